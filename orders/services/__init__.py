"""The functions that change orders, payments and refunds, by sub-domain.

Each takes keyword-only arguments and runs in short transactions. A provider is never
called while a row lock is held: the pending row is written and committed first, the
provider is called, and its answer is recorded in a second transaction. Webhooks,
sync and reconciliation all end in ``payment_apply`` / ``refund_apply``, which are
idempotent and tolerate events in any order.

The modules, each importing only those above it:

- ``lifecycle``: transitions, locks, the history; ``order_set_status``.
- ``attention``: what is listed for staff (Needs attention).
- ``refund_results``: what providers say of refunds, applied (``refund_apply``).
- ``refunds``: refunds asked for, approvals, sending them (``refund_request``).
- ``payment_results``: what providers say of payments, applied (``payment_apply``),
  and closing the attempts of orders that are no longer payable.
- ``reconcile``: settling what providers never reported (``payments_reconcile``).
- ``orders``: creating, cancelling and timing out orders; the expiry run.
- ``payments``: starting a payment and asking the provider again.
- ``staff``: the support console's actions (imported as ``orders.services.staff``).
- ``partner``: the platform's grants, revokes and product upserts (partner API).

The names below are the services the views, API, admin, commands and the payment
event sink call as ``services.<name>``. A test that patches a name patches it in the
module that looks it up (``orders.services.payment_results._order_paid``), not here.
"""

from orders.services.attention import attention_open
from orders.services.lifecycle import (
    PAYABLE,
    REVERSALS,
    TRANSITIONS,
    order_event_write,
    order_set_status,
)
from orders.services.orders import (
    ExpireReport,
    order_cancel,
    order_create,
    order_timeout,
    orders_expire,
    orders_expire_run,
)
from orders.services.partner import entitlement_grant, entitlement_revoke, product_upsert
from orders.services.payment_results import order_attempts_close, payment_apply
from orders.services.payments import PaymentStarted, payment_start, payment_sync
from orders.services.reconcile import (
    CLAIM_LEASE,
    Checked,
    ReconcileReport,
    attention_subject_settle,
    payments_reconcile,
)
from orders.services.refund_results import refund_apply
from orders.services.refunds import (
    SUBMIT_LEASE,
    _refund_claim,
    approval_threshold,
    refund_amount_checked,
    refund_approval_decide,
    refund_needs_approval,
    refund_request,
    refund_submit,
    staff_refund_total,
)

__all__ = [
    "CLAIM_LEASE",
    "PAYABLE",
    "REVERSALS",
    "SUBMIT_LEASE",
    "TRANSITIONS",
    "Checked",
    "ExpireReport",
    "PaymentStarted",
    "ReconcileReport",
    "_refund_claim",
    "approval_threshold",
    "attention_open",
    "attention_subject_settle",
    "entitlement_grant",
    "entitlement_revoke",
    "order_attempts_close",
    "order_cancel",
    "order_create",
    "order_event_write",
    "order_set_status",
    "order_timeout",
    "orders_expire",
    "orders_expire_run",
    "payment_apply",
    "payment_start",
    "payment_sync",
    "payments_reconcile",
    "product_upsert",
    "refund_amount_checked",
    "refund_apply",
    "refund_approval_decide",
    "refund_needs_approval",
    "refund_request",
    "refund_submit",
    "staff_refund_total",
]
