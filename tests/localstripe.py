"""localstripe, the stateful fake Stripe server, for tests that drive the real Stripe SDK.

localstripe is GPL and a test tool only: scripts/test installs it into its own virtualenv,
.venv-localstripe, and it runs there as a separate process; nothing here imports it.

``localstripe`` (session): the server on 127.0.0.1 and a free port. Without
.venv-localstripe its tests skip, except in CI, where they fail (the MariaDB policy).

``stripe_local`` (function): a flushed server, the STRIPE_* settings pointing at it, the
global ``stripe`` module (which dj-stripe calls) pointing at it, and the Account and
APIKey rows dj-stripe needs to process its events (localstripe has no /v1/account).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import stripe

ROOT = Path(__file__).resolve().parent.parent
LOCALSTRIPE_PYTHON = ROOT / ".venv-localstripe" / "bin" / "python"

# dj-stripe wants "sk_test_" and at least 24 letters or digits.
SECRET_KEY = "sk_test_" + "localstripe".ljust(32, "0")
PUBLISHABLE_KEY = "pk_test_" + "localstripe".ljust(32, "0")
WEBHOOK_SECRET = "whsec_" + "localstripe".ljust(32, "0")
ACCOUNT_ID = "acct_localstripe000000"

# Runs in .venv-localstripe as `python -c SERVER <port file>`. localstripe's own command
# binds every interface (::) and shares its state with every other localstripe on the
# machine through /tmp/localstripe.pickle; this one binds loopback on a port the kernel
# picks, keeps its state in memory, and adds DELETE /_config/webhooks, which forgets the
# webhooks and drops the events not yet delivered (localstripe sends each after 1 s).
SERVER = """
import asyncio, logging, os, socket, sys
from aiohttp import web
from localstripe import resources, server, webhooks

resources.Store.dump_to_disk = lambda self: None
pending = set()

def schedule_webhook(event):
    task = asyncio.ensure_future(webhooks._send_webhook(event))
    pending.add(task)
    task.add_done_callback(pending.discard)

resources.schedule_webhook = schedule_webhook


async def forget_webhooks(request):
    for task in list(pending):
        task.cancel()
    webhooks._webhooks.clear()
    return web.Response()

server.app.router.add_delete("/_config/webhooks", forget_webhooks)
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
web.run_app(server.app, sock=sock, print=None)
"""

STARTUP_SECONDS = 20


class LocalStripeError(Exception):
    pass


class LocalStripe:
    """A running localstripe: its URL, its log, and its /_config API."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        """The server's output: requests and webhook deliveries, for failure messages."""
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            data = json.dumps(body) if body is not None else None
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _config(self, method: str, path: str, body: dict | None = None) -> None:
        status, content = self.request(method, path, body)
        if status != 200:
            raise LocalStripeError(f"{method} {path}: HTTP {status}: {content[:500]!r}")

    def flush(self) -> None:
        """Forget every object, every webhook and every event not yet delivered."""
        self._config("DELETE", "/_config/webhooks")
        self._config("DELETE", "/_config/data")

    def configure_webhook(
        self, name: str, url: str, secret: str, events: list[str] | None = None
    ) -> None:
        """Post (about 1 s later) every event, or those of `events`, to url, signed."""
        body: dict = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        self._config("POST", f"/_config/webhooks/{name}", body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _start(directory: Path) -> LocalStripe:
    port_file = directory / "port"
    log_path = directory / "localstripe.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(LOCALSTRIPE_PYTHON), "-c", SERVER, str(port_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    server = None
    while time.monotonic() < deadline and process.poll() is None:
        if server is None and port_file.exists():
            server = LocalStripe(process, int(port_file.read_text()), log_path)
        if server is not None:
            try:
                server.request("GET", "/v1/balance")  # any answer will do: 401 without a key
            except OSError:
                pass
            else:
                return server
        time.sleep(0.05)
    output = log_path.read_text(errors="replace")
    if process.poll() is None:
        process.kill()
        process.wait()
    raise LocalStripeError(
        f"localstripe did not answer within {STARTUP_SECONDS} s "
        f"(exit code {process.returncode}); its output:\n{output}"
    )


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory) -> Iterator[LocalStripe]:
    if not LOCALSTRIPE_PYTHON.exists():
        reason = (
            f"needs localstripe in {LOCALSTRIPE_PYTHON.parent.parent.name}: run scripts/test, "
            "which installs it"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the localstripe tests: {reason}")
        pytest.skip(reason)
    server = _start(tmp_path_factory.mktemp("localstripe"))
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class StripeLocal:
    server: LocalStripe
    base_url: str
    secret_key: str
    publishable_key: str
    webhook_secret: str
    account_id: str

    def client(self) -> stripe.StripeClient:
        """The SDK's client, talking to localstripe with the test secret key."""
        return stripe.StripeClient(self.secret_key, base_addresses={"api": self.base_url})


@pytest.fixture
def stripe_local(settings, localstripe: LocalStripe, db) -> Iterator[StripeLocal]:
    from djstripe.enums import APIKeyType
    from djstripe.models import Account, APIKey

    localstripe.flush()
    settings.STRIPE_API_BASE = localstripe.base_url
    settings.STRIPE_API_HOST = localstripe.base_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    # dj-stripe's names: its test-mode key wins over STRIPE_SECRET_KEY.
    settings.STRIPE_LIVE_MODE = False
    settings.STRIPE_TEST_SECRET_KEY = SECRET_KEY
    settings.STRIPE_TEST_PUBLIC_KEY = PUBLISHABLE_KEY
    if "stripe" not in settings.PAYMENT_CHANNELS_ENABLED:
        settings.PAYMENT_CHANNELS_ENABLED = [*settings.PAYMENT_CHANNELS_ENABLED, "stripe"]

    # dj-stripe looks the owner account of its key up with GET /v1/account, which
    # localstripe lacks; rows made here (with no save() hook calling Stripe) answer it.
    account = Account.objects.create(
        id=ACCOUNT_ID,
        livemode=False,
        stripe_data={"id": ACCOUNT_ID, "object": "account", "type": "standard"},
    )
    APIKey.objects.create(
        secret=SECRET_KEY,
        type=APIKeyType.secret,
        livemode=False,
        name="localstripe",
        djstripe_owner_account=account,
    )

    # dj-stripe calls Stripe through the global module, pointed at STRIPE_API_HOST only
    # once, when it is imported.
    api_base = stripe.api_base
    stripe.api_base = localstripe.base_url
    try:
        yield StripeLocal(
            server=localstripe,
            base_url=localstripe.base_url,
            secret_key=SECRET_KEY,
            publishable_key=PUBLISHABLE_KEY,
            webhook_secret=WEBHOOK_SECRET,
            account_id=ACCOUNT_ID,
        )
    finally:
        stripe.api_base = api_base
        localstripe.flush()
