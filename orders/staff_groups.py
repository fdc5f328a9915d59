"""The two staff groups a support team starts with, and what each may do.

- **support**: find and read orders, their attempts, refunds, webhook events,
  discounts and platform users; refund (up to the approval threshold, above it the
  refund waits for a lead).
- **support lead**: all of that, and approve or reject large refunds, sync an order
  with its channel or mark it paid by hand, resolve the needs-attention queue, replay
  webhook events, grant products and edit them.

Neither group sees the data synced from Stripe (dj-stripe's models): give those
permissions to whoever works with Stripe's own objects. Nor creators' merchant accounts
(payment integrations): superusers manage those.

``migrate`` creates the groups when they do not exist yet (``ensure``), and never
changes them afterwards, so a team's own adjustments stay.
``python manage.py support_groups`` puts them back to these permissions (``reset``).
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

SUPPORT = "support"
SUPPORT_LEAD = "support lead"

_SUPPORT_PERMISSIONS = (
    "orders.view_order",
    "orders.view_orderevent",
    "orders.view_refund",
    "orders.add_refund",
    "orders.view_refundapproval",
    "orders.view_attention",
    "orders.view_product",
    "payments.view_webhookevent",
    "payments.view_pingxxorder",
    "payments.view_stripeorder",
    "payments.view_sandboxattempt",
    "payments.view_alipayorder",
    "payments.view_wechatpayorder",
    "promos.view_couponbatch",
    "promos.view_couponusage",
    "promos.view_campaign",
    "promos.view_campaignredemption",
    "bridge.view_platformuser",
)
_LEAD_PERMISSIONS = (
    *_SUPPORT_PERMISSIONS,
    "orders.change_refundapproval",
    "orders.change_order",
    "orders.add_order",
    "orders.change_attention",
    "orders.add_product",
    "orders.change_product",
    "payments.change_webhookevent",
)
GROUPS: dict[str, tuple[str, ...]] = {
    SUPPORT: _SUPPORT_PERMISSIONS,
    SUPPORT_LEAD: _LEAD_PERMISSIONS,
}


def _permissions(names: tuple[str, ...]) -> list[Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = [
        permission
        for permission in Permission.objects.select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in wanted
    ]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise LookupError(f"Unknown permissions: {sorted('.'.join(m) for m in missing)}")
    return found


def reset() -> list[Group]:
    """Create both groups, or put them back to exactly their permissions."""
    groups = []
    for name, permissions in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(permissions))
        groups.append(group)
    return groups


def ensure(**kwargs) -> None:
    """After ``migrate`` (a post_migrate receiver): create the groups that do not exist
    yet; an existing group is left as its team made it. A migrate of some apps only,
    whose permissions do not all exist yet, leaves it to the next full one."""
    for name, permissions in GROUPS.items():
        if Group.objects.filter(name=name).exists():
            continue
        try:
            found = _permissions(permissions)
        except LookupError:
            return
        Group.objects.create(name=name).permissions.set(found)
