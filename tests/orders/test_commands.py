"""manage.py reconcile_payments and expire_orders: dry runs, settlement, the summary,
the exit status, and concurrent runs on several machines (MariaDB)."""

import io
import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from orders import services
from orders.models import Order, OrderEvent, OrderStatus, Refund, RefundStatus
from orders.services import orders as order_services
from payments.models import AttemptStatus, PingxxOrder, SandboxAttempt
from payments.providers.base import ProviderUnavailable
from payments.providers.sandbox import SandboxProvider
from tests.factories import ProductFactory
from tests.payments.conftest import pingxx_channel  # noqa: F401  (fixture)
from tests.threads import run_together

LONG_AGO = timedelta(hours=1)  # older than the threshold and than a claim's lease


def age(model, **filters):
    then = timezone.now() - LONG_AGO
    model.objects.filter(**filters).update(created_at=then, updated_at=then)


def run(command, *args):
    """The command's output (stdout, stderr) and the CommandError it raised, if any."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def summary_row(output, label):
    """The numbers of a row of the summary table: checked, settled, unchanged, errors."""
    match = re.search(rf"^{re.escape(label)}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", output, re.M)
    assert match, f"no {label!r} row in:\n{output}"
    return tuple(int(n) for n in match.groups())


def sandbox_attempt_paid_at_provider(user="u"):
    """An unpaid order whose sandbox payment succeeded, the event never arriving."""
    product = ProductFactory(price=Decimal("10.00"))
    order, _ = services.order_create(user_bid=user, product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    SandboxAttempt.objects.filter(attempt_bid=attempt.attempt_bid).update(
        provider_state="succeeded"
    )
    age(SandboxAttempt, attempt_bid=attempt.attempt_bid)
    return order, attempt.attempt_bid


# ---- reconcile_payments ----


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox_channel")
def test_a_dry_run_reports_what_it_would_settle_and_changes_nothing():
    order, bid = sandbox_attempt_paid_at_provider()
    before = SandboxAttempt.objects.get(attempt_bid=bid)

    out, _, error = run("reconcile_payments", "--dry-run")

    assert error is None
    assert f"would settle attempt {bid} [sandbox]: would record the payment of 10" in out
    assert "Dry run: nothing was changed." in out
    assert summary_row(out, "total") == (1, 1, 0, 0)
    assert "would settle" in out.splitlines()[-5]  # the table's header
    after = SandboxAttempt.objects.get(attempt_bid=bid)
    assert (after.status, after.updated_at) == (AttemptStatus.PENDING, before.updated_at)
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID
    assert not OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox_channel")
def test_a_run_settles_a_sandbox_payment_and_prints_the_summary():
    order, bid = sandbox_attempt_paid_at_provider()
    fresh_order, fresh_bid = sandbox_attempt_paid_at_provider(user="v")
    SandboxAttempt.objects.filter(attempt_bid=fresh_bid).update(created_at=timezone.now())

    out, err, error = run("reconcile_payments", "--older-than", "300")

    assert error is None and err == ""
    assert f"settled attempt {bid} [sandbox]: now paid" in out
    assert fresh_bid not in out  # too recent to be chased
    for label in ("total", "kind: attempt", "channel: sandbox"):
        assert summary_row(out, label) == (1, 1, 0, 0)
    order.refresh_from_db()
    fresh_order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert fresh_order.status == OrderStatus.UNPAID

    again, _, error = run("reconcile_payments")
    assert error is None and summary_row(again, "total") == (0, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox_channel")
def test_a_refund_that_never_reached_the_provider_dry_run_then_sent():
    order, bid = sandbox_attempt_paid_at_provider()
    services.payment_sync(order=order)
    with (
        mock.patch.object(
            SandboxProvider, "refund", side_effect=ProviderUnavailable("down", channel="sandbox")
        ),
        pytest.raises(ProviderUnavailable),
    ):
        services.refund_request(order=order, reason="customer asked")
    refund = Refund.objects.get(order=order)
    age(Refund, pk=refund.pk)
    Refund.objects.filter(pk=refund.pk).update(submitted_at=timezone.now() - LONG_AGO)

    out, _, error = run("reconcile_payments", "--dry-run")
    assert error is None
    assert f"would settle refund {refund.refund_bid} [sandbox]: would send it" in out
    assert summary_row(out, "kind: refund") == (1, 1, 0, 0)
    assert SandboxAttempt.objects.get(attempt_bid=bid).provider_refunds == []
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING

    out, _, error = run("reconcile_payments")
    assert error is None
    assert summary_row(out, "kind: refund") == (1, 1, 0, 0)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert len(SandboxAttempt.objects.get(attempt_bid=bid).provider_refunds) == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox_channel")
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_provider_error_makes_the_exit_status_non_zero(dry_run):
    order, bid = sandbox_attempt_paid_at_provider()
    settled_order, _ = sandbox_attempt_paid_at_provider(user="v")
    real_fetch = SandboxProvider.fetch_payment

    def fetch(self, provider_payment_id):
        attempt = SandboxAttempt.objects.get(payment_id=provider_payment_id)
        if attempt.attempt_bid == bid:
            raise ProviderUnavailable("sandbox is down", channel="sandbox")
        return real_fetch(self, provider_payment_id)

    with mock.patch.object(SandboxProvider, "fetch_payment", fetch):
        out, err, error = run("reconcile_payments", *(["--dry-run"] if dry_run else []))

    assert isinstance(error, CommandError)  # manage.py exits with status 1
    assert "1 disagreements with a provider could not be settled" in str(error)
    assert f"attempt {bid}: provider_unavailable: sandbox is down" in err
    assert summary_row(out, "total") == (2, 1, 0, 1)  # the other row is still settled
    order.refresh_from_db()
    settled_order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID
    expected = OrderStatus.UNPAID if dry_run else OrderStatus.PAID
    assert settled_order.status == expected


def pingxx_unpaid_order():
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order, method="alipay_qr")
    attempt = PingxxOrder.objects.get(transaction_no=started.attempt.attempt_bid)
    then = timezone.now() - LONG_AGO
    PingxxOrder.objects.filter(pk=attempt.pk).update(created_at=then, updated_at=then)
    return order, attempt


@pytest.mark.django_db
@pytest.mark.usefixtures("pingxx_channel")
def test_a_pingxx_payment_is_settled_against_the_double(pingxx_double):
    order, attempt = pingxx_unpaid_order()
    pingxx_double.pay(attempt.charge_id)

    out, _, error = run("reconcile_payments", "--dry-run")
    assert error is None and summary_row(out, "channel: pingxx") == (1, 1, 0, 0)
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID

    out, _, error = run("reconcile_payments")
    assert error is None
    assert f"settled attempt {attempt.transaction_no} [pingxx]" in out
    assert summary_row(out, "channel: pingxx") == (1, 1, 0, 0)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("19.90")


@pytest.mark.django_db
@pytest.mark.usefixtures("pingxx_channel")
def test_a_pingxx_gateway_error_fails_the_run(pingxx_double):
    order, attempt = pingxx_unpaid_order()
    pingxx_double.pay(attempt.charge_id)
    pingxx_double.fail_next(502)

    out, err, error = run("reconcile_payments")

    assert isinstance(error, CommandError)
    assert f"attempt {attempt.transaction_no}" in err
    assert summary_row(out, "channel: pingxx") == (1, 0, 0, 1)
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID
    # The next run, with Ping++ answering again, settles it.
    PingxxOrder.objects.filter(pk=attempt.pk).update(updated_at=timezone.now() - LONG_AGO)
    _, _, error = run("reconcile_payments")
    assert error is None
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox_channel")
def test_a_terminal_gets_a_progress_bar_instead_of_lines():
    _, bid = sandbox_attempt_paid_at_provider()
    out = Terminal()
    call_command("reconcile_payments", stdout=out)
    text = out.getvalue()
    assert "\r[" + "#" * 30 + "] 1/1" in text
    assert f"settled attempt {bid}" not in text
    assert summary_row(text, "total") == (1, 1, 0, 0)


# ---- expire_orders ----


def unpaid_order(user, *, created_ago):
    product = ProductFactory()
    order, _ = services.order_create(user_bid=user, product_bid=product.product_bid)
    services.payment_start(order=order)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - created_ago)
    return order


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox_channel")
@override_settings(PAY_ORDER_EXPIRE_SECONDS=600)
def test_expire_orders_times_out_old_unpaid_orders_and_leaves_fresh_ones():
    old = unpaid_order("a", created_ago=timedelta(minutes=11))
    fresh = unpaid_order("b", created_ago=timedelta(minutes=9))

    out, _, error = run("expire_orders", "--dry-run")
    assert error is None
    assert f"would time out order {old.order_bid}" in out
    assert fresh.order_bid not in out
    assert summary_row(out, "total") == (1, 1, 0, 0)
    old.refresh_from_db()
    assert old.status == OrderStatus.UNPAID

    out, _, error = run("expire_orders")
    assert error is None
    assert f"timed out order {old.order_bid}" in out
    assert summary_row(out, "kind: order") == (1, 1, 0, 0)
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == OrderStatus.TIMEOUT
    assert fresh.status == OrderStatus.UNPAID
    assert summary_row(run("expire_orders")[0], "total") == (0, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox_channel")
@override_settings(PAY_ORDER_EXPIRE_SECONDS=600)
def test_expire_orders_exits_non_zero_when_an_order_cannot_be_timed_out():
    old = unpaid_order("a", created_ago=timedelta(hours=1))
    with mock.patch.object(order_services, "order_timeout", side_effect=RuntimeError("disk full")):
        out, err, error = run("expire_orders")
    assert isinstance(error, CommandError)
    assert f"order {old.order_bid}: RuntimeError: disk full" in err
    assert summary_row(out, "total") == (1, 0, 0, 1)


# ---- several machines at once (MariaDB: real row locks) ----


def settled_by(output, word):
    return set(re.findall(rf"^{word} \w+ (\S+) ", output, re.M))


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sandbox_channel")
def test_concurrent_reconcile_runs_settle_each_row_exactly_once():
    pending = dict(sandbox_attempt_paid_at_provider(user=f"u{i}") for i in range(8))

    def reconcile(i):
        out = io.StringIO()
        call_command("reconcile_payments", "--limit", "5", stdout=out)
        return out.getvalue()

    first, second = run_together(reconcile, count=2)
    assert isinstance(first, str) and isinstance(second, str), (first, second)
    one, two = settled_by(first, "settled"), settled_by(second, "settled")
    assert not one & two  # no row settled by both
    assert one and two  # --limit 5 of 8: each run took some
    assert one | two == set(pending.values())
    for order in pending:
        assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1
    assert Order.objects.filter(status=OrderStatus.PAID).count() == len(pending)


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sandbox_channel")
@override_settings(PAY_ORDER_EXPIRE_SECONDS=600)
def test_concurrent_expire_runs_time_out_each_order_exactly_once():
    orders = [unpaid_order(f"u{i}", created_ago=timedelta(hours=1)) for i in range(10)]

    def expire(i):
        out = io.StringIO()
        call_command("expire_orders", stdout=out)
        return out.getvalue()

    first, second = run_together(expire, count=2)
    assert isinstance(first, str) and isinstance(second, str), (first, second)
    one, two = settled_by(first, "timed out"), settled_by(second, "timed out")
    assert not one & two
    assert one | two == {f"{o.order_bid}" for o in orders}
    for order in orders:
        assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.TIMEOUT).count() == 1
