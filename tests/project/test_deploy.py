"""deploy/ mirrors what the tests run: declared variables, existing commands, the same
system packages and requirements, and a gunicorn configuration gunicorn accepts."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class

from payments_project import config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The MariaDB image's own variables, set on its service only.
MARIADB_IMAGE_VARIABLES = {
    "MARIADB_DATABASE",
    "MARIADB_USER",
    "MARIADB_PASSWORD",
    "MARIADB_ROOT_PASSWORD",
}
MANAGE = re.compile(r"manage\.py\s+([a-z_]+)([^;&|]*)")
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")
GUNICORN = ["gunicorn", "-c", "deploy/gunicorn.conf.py", "payments_project.wsgi"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def command_text(service: dict) -> str:
    command = service.get("command") or ""
    return command if isinstance(command, str) else shlex.join(map(str, command))


def test_every_variable_set_is_declared(compose):
    for name, service in compose["services"].items():
        allowed = MARIADB_IMAGE_VARIABLES if service["image"].startswith("mariadb") else set()
        for variable in environment(service):
            assert variable in config.BY_NAME or variable in allowed, (name, variable)
        if variable := service.get("env_file"):
            assert variable == ".env"  # deploy/.env, a copy of .env.example
    interpolated = set(INTERPOLATION.findall((DEPLOY / "compose.yaml").read_text()))
    assert interpolated <= set(config.BY_NAME) | MARIADB_IMAGE_VARIABLES


def interpolated(value: str) -> str:
    """A value as compose passes it, with a sample for each ${NAME:?message}."""
    return re.sub(r"\$\{[A-Z_][A-Z0-9_]*(?::?[-?][^}]*)?\}", "sample0123", value)


def test_the_services_run_in_production_mode_with_values_that_parse(compose):
    for name, service in compose["services"].items():
        if service["image"].startswith(("mariadb", "redis")):
            continue
        env = {key: interpolated(value) for key, value in environment(service).items()}
        values = config.load(env)  # raises, naming the variable, on a value that does not parse
        assert values["DEBUG"] is False and values["LOG_FORMAT"] == "json", name
        assert values["DATABASE_URL"]["ENGINE"] == "django.db.backends.mysql", name
        assert values["DATABASE_URL"]["HOST"] == "db", name


def test_the_commands_exist_and_take_their_arguments(compose):
    commands = get_commands()
    ran = set()
    for name, service in compose["services"].items():
        for command, arguments in MANAGE.findall(command_text(service)):
            assert command in commands, (name, command)
            parser = load_command_class(commands[command], command).create_parser(
                "manage.py", command
            )
            parser.parse_args(shlex.split(arguments))  # exits on an unknown option
            ran.add(command)
    assert {"migrate", "djstripe_sync_models"} <= ran
    assert shlex.split(command_text(compose["services"]["web"])) == GUNICORN


def test_workers_for_each_queue_and_one_beat_run_the_background_work(compose, settings):
    services = compose["services"]
    worker, sync, beat = services["worker"], services["stripe-sync"], services["beat"]
    queues = set()
    for service in (worker, sync):
        command = service["command"]
        assert command[:4] == ["celery", "-A", "payments_project", "worker"]
        queues.add(command[command.index("-Q") + 1])
        assert "inspect ping" in " ".join(service["healthcheck"]["test"])
    # Every queue a task is routed to has its worker, and no worker mixes the
    # rate-limited syncs with the rest.
    assert queues == {"celery", settings.STRIPE_SYNC_QUEUE}
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= queues
    assert beat["command"][:4] == ["celery", "-A", "payments_project", "beat"]
    # web too: without a broker it would apply every webhook in its request.
    for service in (services["web"], worker, sync, beat):
        assert service["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert "redis" in service["depends_on"]
    assert services["redis"]["image"].startswith("redis:")
    # No loop of the old cron jobs is left: beat schedules them.
    assert not {"reconcile", "expire", "prune-inbox"} & set(services)


def test_the_dockerfile_mirrors_bootstrap_and_serves_with_the_same_command():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    packages = re.search(r"system_packages=\(([^)]*)\)", bootstrap).group(1).split()
    installed = re.search(r"apt-get install ([^\n]*)", dockerfile).group(1).split()
    assert set(packages) <= set(installed)
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "manage.py collectstatic --noinput" in dockerfile
    assert f"CMD {GUNICORN}".replace("'", '"') in dockerfile
    assert "gunicorn==" in (ROOT / "requirements.txt").read_text()


def test_gunicorn_configuration_is_accepted(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        gunicorn = shutil.which("gunicorn")
    assert gunicorn, "gunicorn is in requirements.txt: install it"
    env = {
        **os.environ,
        "DJANGO_ENV_FILE": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": "deploy-test-signing-key-that-is-long-enough-for-the-checks",
        "LOG_FORMAT": "json",
        "WEB_CONCURRENCY": "3",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    check = subprocess.run(
        [str(gunicorn), "--check-config", *GUNICORN[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    printed = subprocess.run(
        [str(gunicorn), "--print-config", *GUNICORN[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    settings = dict(
        line.split("=", 1) for line in printed.stdout.replace(" ", "").splitlines() if "=" in line
    )
    assert settings["workers"] == "3"
    assert settings["accesslog"] == "-"
    assert "JsonFormatter" in settings["logconfig_dict"]
