"""The service under load (run by scripts/bench): requests per second, p50 and p99
latency and SQL queries per request of its endpoints, each as a ratio to "B", a bare
Django view that does one INSERT in a transaction, measured in the same run.

How it runs, as deploy/ does: gunicorn with deploy/gunicorn.conf.py, 2 workers
(WEB_CONCURRENCY), persistent database connections (DATABASE_CONN_MAX_AGE), DEBUG off,
behind a TLS proxy (X-Forwarded-Proto); a Celery worker (prefork, concurrency 1) on
Redis; the Ping++ and Stripe doubles of the test suite on loopback; MariaDB in a scratch
database, dropped and created again (migrated) on each run, or with --keep-db reused
(emptied) and kept. Settings: bench.settings (the service's, plus the X-Queries
middleware and the reference view).

Load: --connections threads, each one connection sending requests back to back, for
--seconds after a 1 s warm-up. Webhooks are signed beforehand; one-off requests (fresh
events, orders, payments) come from pools sized from B's rate; a pool that runs out
ends its scenario early, and the rate is taken over the time it ran.

Data: --sizes orders loaded by bulk SQL (MariaDB's SEQUENCE engine), read scenarios
compared with their 1k p50. Then the RSS of each gunicorn worker, and the events one
Celery worker applies per second from the webhook inbox.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import data, env, load, pools, procs, targets  # noqa: E402

WARMUP = 1.0
POOL_SHARE = 0.6  # a one-off pool holds this share of what B would send in the same time
INBOX_EVENTS = 500
SIZES = {"k": 1_000, "m": 1_000_000}


def size_of(text: str) -> int:
    text = text.strip().lower()
    if text[-1:] in SIZES:
        return int(float(text[:-1]) * SIZES[text[-1]])
    return int(text)


def size_label(n: int) -> str:
    return (
        f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds a scenario")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--sizes", default="1k,1m", help="orders loaded, e.g. 1k or 1k,1m")
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="reuse the scratch database if present, and do not drop it",
    )
    parser.add_argument(
        "--scenarios",
        default="",
        help="comma-separated substrings: only matching scenarios (B always runs)",
    )
    parser.add_argument(
        "--inbox-events",
        type=int,
        default=INBOX_EVENTS,
        help="webhooks delivered for the worker's events-per-second figure (0: skip)",
    )
    args = parser.parse_args()
    args.sizes = sorted(size_of(s) for s in args.sizes.split(",") if s.strip())
    return args


def machine(facts: dict[str, str]) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    import django
    import gunicorn

    return [
        f"machine   {cpu}, {os.cpu_count()} cores, {memory / 2**20:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"MariaDB   {facts['version']} (innodb_buffer_pool_size {facts['buffer_pool']}, "
        f"innodb_flush_log_at_trx_commit {facts['flush_log_at_trx_commit']})",
        f"Python    {platform.python_version()}, Django {django.get_version()}, "
        f"gunicorn {gunicorn.__version__}",
        f"date      {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
    ]


def queries(result: load.Result) -> str:
    if not result.queries:
        return "-"
    low, high = min(result.queries), max(result.queries)
    median = statistics.median_low(result.queries)
    return str(median) if low == high else f"{median} ({low}-{high})"


def line(name: str, size: int, result: load.Result, b_rate: float, base_p50: float | None) -> str:
    text = (
        f"{name:<32} {size_label(size):>3} {result.rate:6.0f} req/s  "
        f"p50 {result.percentile(0.5):6.1f} ms  p99 {result.percentile(0.99):6.1f} ms  "
        f"q/req {queries(result):<10} {result.rate / b_rate if b_rate else 0:5.2f} x B"
    )
    if base_p50:
        text += f"  p50 {result.percentile(0.5) / base_p50:4.2f} x 1k"
    notes = []
    if result.ran_out_after is not None:
        notes.append(f"pool ran out after {result.ran_out_after:.1f} s")
    if result.errors:
        total = sum(result.statuses.values())
        codes = ", ".join(f"{s or 'no answer'} x{n}" for s, n in sorted(result.statuses.items()))
        notes.append(f"NOT 2xx: {result.errors}/{total} ({codes}); first: {result.first_error}")
    return text + "".join(f"\n    {note}" for note in notes)


def worker_rss(gunicorn) -> tuple[str, list[float]]:
    sizes = [procs.rss_mib(pid) for pid in procs.children(gunicorn.pid)]
    text = ", ".join(f"{size:.0f}" for size in sizes)
    master = procs.rss_mib(gunicorn.pid)
    return f"gunicorn workers RSS: {text} MiB (master {master:.0f} MiB)", sizes


def inbox_rate(
    *, context, port: int, connections: int, count: int, start_worker
) -> tuple[str, object]:
    """The worker is stopped: deliver ``count`` fresh Ping++ webhooks, start the worker and
    time until none of their inbox rows is 'received'. Returns the figure and the worker."""
    import json

    from bench.scenarios import pingxx_delivery
    from payments.models import InboxStatus, WebhookEvent

    pending = pools.pending_attempts("pingxx", count, context.tag())
    requests = [pingxx_delivery(context.signer, p) for p in pending]
    ids = [json.loads(r.body)["id"] for r in requests]
    sent = load.deliver(port=port, requests=requests, connections=connections)
    rows = WebhookEvent.objects.filter(channel="pingxx", event_id__in=ids)
    statuses = Counter(rows.values_list("status", flat=True))
    stored = (
        f"{count} delivered in {sent.seconds:.1f} s ({dict(sent.statuses)}), inbox {dict(statuses)}"
    )
    if sent.errors or not statuses:
        return f"n/a (deliveries failed: {stored}; first: {sent.first_error})", None
    if statuses.get(InboxStatus.RECEIVED, 0) == 0:
        return f"n/a (applied in the request; {stored})", None
    received = statuses[InboxStatus.RECEIVED]
    started = time.perf_counter()
    worker = start_worker()
    ready = time.perf_counter()
    first = None
    deadline = ready + 600
    while (
        left := rows.filter(status=InboxStatus.RECEIVED).count()
    ) and time.perf_counter() < deadline:
        if first is None and left < received:
            first = time.perf_counter()
        time.sleep(0.02)
    done = time.perf_counter()
    if left:
        return f"{received - left} of {received} applied in 600 s ({stored})", worker
    after = Counter(rows.values_list("status", flat=True))
    span = done - (first or ready)
    return (
        f"{received / (done - ready):.0f} events/s ({received} in {done - ready:.2f} s from "
        f"the worker's ready, {span:.2f} s from its first; start-up {ready - started:.1f} s; "
        f"now {dict(after)})"
    ), worker


def drain(limit: float = 300) -> str:
    """Wait until the workers have done what a scenario left (each scenario starts on
    idle workers); say how long that took when it did not take a moment."""
    started = time.perf_counter()
    left = first = pools.backlog()
    while left and time.perf_counter() - started < limit:
        time.sleep(0.1)
        left = pools.backlog()
    if not first:
        return ""
    took = time.perf_counter() - started
    if left:
        return (
            f"the workers left {left} of {first} queued tasks or received events "
            f"after {limit:.0f} s"
        )
    return f"the workers caught up with {first} queued tasks and received events in {took:.1f} s"


def main() -> int:
    args = arguments()
    # Stopped by a signal: the finally below still stops gunicorn, the workers and the
    # doubles, and drops the scratch database.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    database_url, name = env.database()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    keys = env.keys()
    began = time.perf_counter()
    doubles = gunicorn = worker = syncer = None
    prepared = False
    try:
        doubles, urls = procs.doubles_start(
            env=env.service_env(database_url=database_url, keys=keys, doubles={}), run_dir=run_dir
        )
        service_env = env.service_env(database_url=database_url, keys=keys, doubles=urls)
        os.environ.update(service_env)
        kept = data.database_prepare(database_url, name, keep=args.keep_db)
        prepared = True
        _, seconds = data.timed(data.migrate, env=service_env, log=run_dir / "migrate.log")

        import django

        django.setup()
        if kept:
            data.tables_empty()
        for text in machine(data.server_facts()):
            print(text)
        print(
            f"load      average {Path('/proc/loadavg').read_text().split()[0]} before the run "
            "(other jobs on the machine skew every figure)"
        )
        print(
            f"database  {name}: {'kept, emptied' if kept else 'created'}, migrated in "
            f"{seconds:.0f} s; {'kept' if args.keep_db else 'dropped'} at the end; "
            f"logs in {run_dir}"
        )
        print(
            f"service   gunicorn -c deploy/gunicorn.conf.py (2 sync workers), "
            f"DATABASE_CONN_MAX_AGE=60, DEBUG off; Celery workers prefork x1 on Redis, "
            "one for the default queue and one for stripe_sync; "
            f"{args.connections} connections, {args.seconds:g} s a scenario after "
            f"{WARMUP:g} s warm-up"
        )
        sys.stdout.flush()

        import redis

        for url in (env.BROKER_URL, env.CACHE_URL):
            redis.Redis.from_url(url).flushdb()
        data.reference_table_create()
        fixtures = data.fixtures_create()

        from bench.scenarios import SCENARIOS, Context
        from tests.payments.alipay_double import AlipayDouble
        from tests.payments.pingxx_double import PingxxDouble
        from tests.payments.wechatpay_double import WechatpayDouble

        signer = PingxxDouble(
            secret_key="",
            app_id=env.PINGXX_APP_ID,
            merchant_public_key=keys.merchant.public_key(),
            webhook_private_key=keys.pingxx,
        )
        context = Context(
            fixtures=fixtures,
            signer=signer,
            stripe_base=urls["stripe"],
            alipay_signer=AlipayDouble(
                app_id=env.ALIPAY_APP_ID,
                app_public_key=keys.alipay_app.public_key(),
                alipay_key=keys.alipay,
            ),
            wechatpay_signer=WechatpayDouble(
                mch_id=env.WECHATPAY_MCH_ID,
                app_id=env.WECHATPAY_APP_ID,
                merchant_serial_no=env.WECHATPAY_SERIAL_NO,
                merchant_public_key=keys.wechatpay_merchant.public_key(),
                platform_key=keys.wechatpay_platform,
                platform_serial=format(keys.wechatpay_cert.serial_number, "X"),
                api_v3_key=env.WECHATPAY_API_V3_KEY,
            ),
        )
        port = procs.free_port()
        gunicorn = procs.gunicorn_start(env=service_env, port=port, log=run_dir / "gunicorn.log")
        start_worker = lambda: procs.worker_start(env=service_env, log=run_dir / "worker.log")  # noqa: E731
        worker = start_worker()
        syncer = procs.worker_start(
            env=service_env, log=run_dir / "stripe-sync.log", queue="stripe_sync"
        )

        reference = next(s for s in SCENARIOS if s.name == "reference B")

        def measure(next_request) -> load.Result:
            return load.run(
                port=port,
                next_request=next_request,
                connections=args.connections,
                seconds=args.seconds,
                warmup=WARMUP,
            )

        wanted = [s.strip().lower() for s in args.scenarios.split(",") if s.strip()]
        chosen = [
            s
            for s in SCENARIOS
            if s.name == "reference B" or not wanted or any(w in s.name.lower() for w in wanted)
        ]
        loaded, first_p50 = 0, {}
        measured: list[targets.Measured] = []
        rss: list[float] = []
        for size in args.sizes:
            _, seconds = data.timed(data.orders_load, loaded + 1, size, fixtures)
            print(
                f"\n{size_label(size)} orders: {size - loaded:,} loaded in {seconds:.1f} s by bulk "
                f"SQL ({data.orders_count():,} orders in the table, with the scenarios' own)"
            )
            loaded = size
            b_rate = 0.0
            settled = procs.settle()
            if settled:
                print(f"    {settled}", flush=True)
            # Every worker's first requests import and connect: not part of any figure.
            measure(reference.build(context, 0))
            for scenario in chosen:
                pool_size = int(max(b_rate, 200) * (args.seconds + WARMUP) * POOL_SHARE) + 50
                next_request = scenario.build(context, pool_size)
                mark, marked = procs.cpu_mark(), time.perf_counter()
                result = measure(next_request)
                if scenario.name == "reference B":
                    b_rate = result.rate
                base = first_p50.get(scenario.name) if scenario.read else None
                if scenario.read and size == args.sizes[0]:
                    first_p50[scenario.name] = result.percentile(0.5)
                print(line(scenario.name, size, result, b_rate, base), flush=True)
                measured.append(
                    targets.Measured(
                        name=scenario.name,
                        size=size,
                        ratio=result.rate / b_rate if b_rate else 0.0,
                        p50=result.percentile(0.5),
                        p99=result.percentile(0.99),
                        queries=tuple(result.queries),
                        read=scenario.read,
                    )
                )
                others = procs.cpu_others(mark, time.perf_counter() - marked)
                if others > 0.05:
                    print(
                        f"    other processes on the machine used {others:.0%} of its CPU "
                        "meanwhile",
                        flush=True,
                    )
                drained = drain()
                if drained:
                    print(f"    {drained}", flush=True)
            again = measure(reference.build(context, 0))
            print(
                f"reference B again, after the scenarios: {again.rate:.0f} req/s "
                f"({again.rate / b_rate if b_rate else 0:.2f} of the first: the drift of "
                "the machine meanwhile)",
                flush=True,
            )
            text, rss = worker_rss(gunicorn)
            print(text, flush=True)

        if args.inbox_events:
            procs.stop(worker)
            figure, worker = inbox_rate(
                context=context,
                port=port,
                connections=args.connections,
                count=args.inbox_events,
                start_worker=start_worker,
            )
            print(f"\nevents applied by one worker: {figure}")
        print("\ntargets")
        for text in targets.report(measured, rss):
            print(f"  {text}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for process in (worker, syncer, gunicorn, doubles):
            procs.stop(process)
        if prepared:
            from django.db import connections

            connections.close_all()
            if not args.keep_db:
                data.database_drop(database_url, name)
        print(f"\ntotal {time.perf_counter() - began:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
