"""The documentation names only commands, variables and files that exist."""

import re
from pathlib import Path

import pytest
from django.core.management import get_commands

from payments_project import config

BASE = config.BASE_DIR
DOCUMENTS = [*sorted((BASE / "docs").glob("*.md")), BASE / "CHANGELOG.md"]
# The worked example of docs/adding-a-provider.md is a channel that does not exist.
EXAMPLE = re.compile(r"acme", re.IGNORECASE)

INLINE_CODE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"manage\.py\s+([a-z][a-z0-9_]*)")
CONSTANT = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=", re.MULTILINE)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TOP_LEVEL = ("payments_project", "orders", "payments", "bridge", "templates", "tests",
             "scripts", "docs", "deploy")  # fmt: skip
ROOT_FILES = {"README.md", "CHANGELOG.md", "manage.py", "requirements.txt", "pyproject.toml",
              ".env.example"}  # fmt: skip


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def python_names() -> set[str]:
    """Upper-case names the project's code assigns: settings and module constants."""
    names: set[str] = set()
    for package in ("payments_project", "orders", "payments", "bridge"):
        for source in (BASE / package).rglob("*.py"):
            names |= set(re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*[:=]", text(source), re.MULTILINE))
    return names


def test_every_manage_py_command_exists():
    commands = set(get_commands())
    named = {(d.name, c) for d in DOCUMENTS for c in COMMAND.findall(text(d))}
    assert {"migrate", "reconcile_payments", "stripe_webhook_endpoint"} <= {c for _, c in named}
    unknown = sorted((name, c) for name, c in named if c not in commands)
    assert not unknown, f"unknown commands: {unknown}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_environment_variable_is_declared(document):
    """Upper-case names in inline code or assigned in shell lines are declared variables,
    or names the code defines (settings such as PAYMENT_PROVIDERS, constants)."""
    content = text(document)
    candidates = set(ASSIGNED.findall(content))
    for span in INLINE_CODE.findall(content):
        candidates |= set(CONSTANT.findall(span))
    known = set(config.BY_NAME) | set(config.RETIRED) | python_names()
    unknown = {name for name in candidates - known if not EXAMPLE.search(name)}
    assert not unknown, f"{document.name} names undeclared variables: {sorted(unknown)}"


def test_the_variables_the_operations_guide_relies_on_are_declared():
    content = text(BASE / "docs" / "operations.md")
    for name in ("DATABASE_URL", "DATABASE_TIME_ZONE", "PINGXX_WEBHOOK_PUBLIC_KEY",
                 "STRIPE_WEBHOOK_SECRET", "PAYMENT_CHANNELS_ENABLED"):  # fmt: skip
        assert name in content and name in config.BY_NAME


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_file_path_exists(document):
    content = text(document)
    paths = set()
    for span in INLINE_CODE.findall(content):
        token = span.strip()
        if token in ROOT_FILES or (
            "/" in token
            and " " not in token
            and token.split("/", 1)[0] in TOP_LEVEL
            and not EXAMPLE.search(token)
        ):
            paths.add(token)
    if document.name != "CHANGELOG.md":
        assert paths, f"{document.name} names no file"  # the pattern still matches
    missing = sorted(p for p in paths if not (BASE / p.rstrip("/")).exists())
    assert not missing, f"{document.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_resolves(document):
    links = [link for link in LINK.findall(text(document)) if "://" not in link]
    missing = [link for link in links if not (document.parent / link).resolve().exists()]
    assert not missing, f"{document.name} links to missing files: {missing}"
