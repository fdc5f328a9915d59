"""The admin as a support team meets it: the support section first, Stripe's synced data
folded and named as Stripe's, and the two staff groups."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from orders import staff_groups
from tests.factories import StaffFactory, UserFactory

INDEX = reverse("admin:index")


def member(username, group):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def sections(response):
    return [
        (app["app_label"], [str(m["name"]) for m in app["models"]])
        for app in response.context["app_list"]
    ]


@pytest.mark.django_db
def test_the_index_and_the_sidebar_open_with_the_support_section(client):
    client.force_login(StaffFactory())
    response = client.get(INDEX)
    listed = sections(response)
    label, names = listed[0]
    assert label == "support"
    assert names == [
        "Dashboard",
        "Orders",
        "Refunds",
        "Refund approvals",
        "Needs attention",
        "Products",
        "Webhook events",
    ]
    # Listed once: not again in their own applications.
    others = [name for _, names in listed[1:] for name in names]
    assert "Orders" not in others and "Webhook events" not in others
    # Stripe's synced data comes last, folded, every entry named as Stripe's.
    stripe_label, stripe_names = listed[-1]
    assert stripe_label == "djstripe" and len(stripe_names) > 30
    assert all(name.startswith("Stripe") for name in stripe_names)
    assert {"Stripe coupons", "Stripe api keys", "Stripe active entitlements"} <= set(stripe_names)
    html = response.content.decode()
    assert html.index('id="support-order"') < html.index('id="djstripe-coupon"')
    assert '<details class="collapsed-app">' in html
    # The sidebar (on any admin page) is in the same order.
    page = client.get(reverse("admin:orders_order_changelist")).content.decode()
    sidebar = page.split('id="nav-sidebar"')[1]
    assert sidebar.index("support-order") < sidebar.index("promos-") < sidebar.index("djstripe-")
    # An application's own page still lists its models.
    own = client.get(reverse("admin:app_list", args=["orders"]))
    assert [label for label, _ in sections(own)] == ["orders"]


@pytest.mark.django_db
def test_support_staff_see_their_section_and_no_stripe_data(client):
    client.force_login(member("agent", staff_groups.SUPPORT))
    listed = dict(sections(client.get(INDEX)))
    assert "djstripe" not in listed
    assert listed["support"][:3] == ["Dashboard", "Orders", "Refunds"]
    assert "Add" not in client.get(INDEX).content.decode().split('id="support-product"')[1][:200]


@pytest.mark.django_db
def test_the_groups_exist_after_migrate_and_only_the_lead_approves():
    agent = member("agent", staff_groups.SUPPORT)
    lead = member("lead", staff_groups.SUPPORT_LEAD)
    for user in (agent, lead):
        assert user.has_perms(["orders.view_order", "orders.add_refund"])
        assert not user.has_perm("djstripe.view_coupon")
    assert not agent.has_perm("orders.change_refundapproval")
    assert not agent.has_perm("orders.change_order")
    assert lead.has_perms(["orders.change_refundapproval", "orders.change_order"])


@pytest.mark.django_db
def test_the_command_puts_the_groups_back_and_migrate_leaves_them_alone():
    support = Group.objects.get(name=staff_groups.SUPPORT)
    extra = Permission.objects.get(codename="change_order")
    support.permissions.add(extra)
    staff_groups.ensure()  # what migrate runs: an existing group is left as it is
    assert support.permissions.filter(pk=extra.pk).exists()
    out = StringIO()
    call_command("support_groups", stdout=out)
    assert not support.permissions.filter(pk=extra.pk).exists()
    assert "support lead:" in out.getvalue()
    Group.objects.all().delete()
    staff_groups.ensure()
    assert set(Group.objects.values_list("name", flat=True)) == set(staff_groups.GROUPS)
