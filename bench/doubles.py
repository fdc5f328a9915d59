"""The provider doubles of the test suite, served on loopback until SIGTERM:
``python -m bench.doubles READY_FILE`` writes their base URLs to READY_FILE as JSON.

Keys and ids come from the environment the service gets (bench.env): the Ping++ double
checks requests signed with the merchant key and holds nothing else of ours.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from Crypto.PublicKey import RSA

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.payments.pingxx_double import PingxxDouble  # noqa: E402
from tests.payments.stripe_fakes import FakeStripe  # noqa: E402


def main(ready: str) -> None:
    merchant = RSA.import_key(os.environ["PINGXX_PRIVATE_KEY"])
    pingxx = PingxxDouble(
        secret_key=os.environ["PINGXX_SECRET_KEY"],
        app_id=os.environ["PINGXX_APP_ID"],
        merchant_public_key=merchant.public_key(),
    ).start()
    stripe = FakeStripe(secret_key=os.environ["STRIPE_SECRET_KEY"]).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    Path(ready + ".tmp").write_text(
        json.dumps({"pingxx": pingxx.base_url, "stripe": stripe.base_url})
    )
    os.replace(ready + ".tmp", ready)
    done.wait()
    pingxx.stop()
    stripe.stop()


if __name__ == "__main__":
    main(sys.argv[1])
