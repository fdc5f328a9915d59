"""The service's processes, started the way deploy/ runs them: gunicorn with
deploy/gunicorn.conf.py, a Celery worker, and the provider doubles. Each runs in its own
process group, so that stopping it stops its children too."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own commands)
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its children
        )


def stop(process: subprocess.Popen | None, *, timeout: float = 30) -> None:
    """SIGTERM to the process group (a graceful stop), SIGKILL after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def gunicorn_start(*, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    command = [
        PYTHON,
        "-m",
        "gunicorn",
        "-c",
        "deploy/gunicorn.conf.py",
        "-b",
        f"127.0.0.1:{port}",
        "payments_project.wsgi",
    ]
    process = start(command, env=env, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log_tail(log)}")
        if len(children(process.pid)) >= int(env["WEB_CONCURRENCY"]) and _healthy(port):
            return process
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"gunicorn did not answer /healthz in 60 s:\n{log_tail(log)}")


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz", headers={"X-Forwarded-Proto": "https"})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_start(*, env: dict[str, str], log: Path, queue: str = "celery") -> subprocess.Popen:
    """One Celery worker process (prefork, concurrency 1) on ``queue``, as deploy/ runs
    one per queue; returned once it says it is ready."""
    command = [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "payments_project",
        "worker",
        "-Q",
        queue,
        "--pool=prefork",
        "--concurrency=1",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"bench-{queue}-{os.getpid()}@%h",
    ]
    size = log.stat().st_size if log.exists() else 0
    process = start(command, env=env, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited ({process.returncode}):\n{log_tail(log)}")
        with log.open("rb") as out:
            out.seek(size)
            if b" ready." in out.read():
                return process
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"the Celery worker was not ready in 60 s:\n{log_tail(log)}")


def doubles_start(*, env: dict[str, str], run_dir: Path) -> tuple[subprocess.Popen, dict]:
    """The Ping++ and Stripe doubles (tests/), in a process of their own: their threads
    do not share the load generator's interpreter. Returns it and their base URLs."""
    ready = run_dir / "doubles.json"
    process = start(
        [PYTHON, "-m", "bench.doubles", str(ready)], env=env, log=run_dir / "doubles.log"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the doubles exited:\n{log_tail(run_dir / 'doubles.log')}")
        if ready.exists():
            return process, json.loads(ready.read_text())
        time.sleep(0.1)
    stop(process)
    raise RuntimeError("the doubles did not start in 30 s")


# ---- CPU used by processes outside the benchmark (another job on the machine) ----

SERVERS = ("mariadbd", "mysqld", "redis-server")


def _jiffies(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def _ours() -> list[int]:
    """This process, its descendants (gunicorn, the worker, the doubles) and the servers."""
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in (task / "children").read_text().split()]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in SERVERS:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def cpu_mark() -> tuple[int, int]:
    """(jiffies the machine was busy, jiffies our processes used), to compare later."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(values) - values[3] - values[4]  # all but idle and iowait
    return busy, sum(_jiffies(pid) for pid in _ours())


def cpu_others(mark: tuple[int, int], seconds: float) -> float:
    """Share of the machine's CPU (0..1) that processes outside the benchmark used since
    ``mark``. Processes that ended meanwhile are not counted as ours."""
    busy, ours = cpu_mark()
    capacity = seconds * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
    return max(0.0, (busy - mark[0]) - (ours - mark[1])) / capacity if capacity else 0.0


def settle(*, quiet: float = 0.05, limit: float = 30) -> str:
    """Wait, up to ``limit`` seconds, for a second in which processes outside the
    benchmark use less than ``quiet`` of the CPU (a migration's or a load's aftermath
    in the servers is ours, and counted): the reference is measured on a quiet machine.
    Says how it went when it had to wait."""
    started = time.perf_counter()
    while True:
        mark = cpu_mark()
        time.sleep(1)
        others = cpu_others(mark, 1)
        waited = time.perf_counter() - started
        if others < quiet:
            return f"waited {waited:.0f} s for a quiet machine" if waited > 1.5 else ""
        if waited >= limit:
            return f"the machine stayed busy ({others:.0%} by other processes) for {limit:.0f} s"
