"""The support console for discounts: coupon batches made and changed through the
admin, their uses and the export of their codes, promotions, the bulk grant, and the
price lines on an order's page."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders import services
from orders.admin import grants
from orders.admin.coupon_codes import EXPORT_HEADER
from orders.models import Order, OrderStatus
from promos.models import (
    BatchStatus,
    Campaign,
    CouponBatch,
    CouponUsage,
    DiscountType,
    UsageStatus,
    UsageType,
)
from tests.factories import ProductFactory, StaffFactory, UserFactory
from tests.orders.admin.helpers import PRODUCTS, change_url
from tests.promos.helpers import activation_spec, buy, campaign, pay, shared, single

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]

BATCHES = reverse("admin:promos_couponbatch_changelist")
ADD_BATCH = reverse("admin:promos_couponbatch_add")
USES = reverse("admin:promos_couponusage_changelist")
CAMPAIGNS = reverse("admin:promos_campaign_changelist")
ADD_CAMPAIGN = reverse("admin:promos_campaign_add")
GRANT = reverse("admin:orders_product_bulk_grant")


@pytest.fixture
def staff(client):
    user = StaffFactory(username="alice")
    client.force_login(user)
    return user


@pytest.fixture
def course():
    return ProductFactory(price=Decimal("299.00"), currency="cny", name="Course")


def when(days: int) -> dict[str, str]:
    moment = timezone.localtime() + timedelta(days=days)
    return {"date": moment.strftime("%Y-%m-%d"), "time": moment.strftime("%H:%M:%S")}


def batch_form(**overrides) -> dict:
    data = {
        "name": "Spring sale",
        "usage": "shared",
        "code": "SPRING15",
        "count": "",
        "discount_type": "percent",
        "value": "15",
        "currency": "",
        "starts_at": when(-1),
        "ends_at": when(30),
        "total_limit": "100",
        "per_user_limit": "1",
        "release_on_refund": "on",
    }
    data.update(overrides)
    for name in ("starts_at", "ends_at"):
        moment = data.pop(name)
        data[f"{name}_0"], data[f"{name}_1"] = moment["date"], moment["time"]
    return data


def form_errors(response) -> dict:
    assert response.status_code == 200, response
    return response.context["adminform"].form.errors


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# ---- adding batches ----


def test_a_shared_batch_is_made_through_the_form_with_its_author_in_its_history(client, staff):
    response = client.post(ADD_BATCH, batch_form(per_user_limit="2"))

    assert response.status_code == 302, form_errors(response)
    batch = CouponBatch.objects.get()
    assert (batch.code, batch.usage_type, batch.discount_type, batch.value) == (
        "SPRING15",
        UsageType.SHARED,
        DiscountType.PERCENT,
        Decimal("15.00"),
    )
    assert (batch.total_count, batch.per_user_limit, batch.currency) == (100, 2, "")
    assert (batch.created_user_bid, batch.release_on_refund) == ("alice", True)
    assert batch.stacks_with_promotions is False
    history = LogEntry.objects.filter(object_id=str(batch.pk))
    assert [(e.user_id, e.action_flag) for e in history] == [(staff.pk, ADDITION)]
    assert "1 code" in history.get().change_message
    assert not CouponUsage.objects.exists()


def test_a_single_use_batch_generates_its_codes_for_the_products_chosen(client, staff, course):
    data = batch_form(
        usage="single",
        code="",
        count="5",
        total_limit="",
        discount_type="fixed",
        value="5.00",
        currency="cny",
        products=[course.product_bid],
    )

    response = client.post(ADD_BATCH, data, follow=True)

    batch = CouponBatch.objects.get()
    assert (batch.usage_type, batch.total_count, batch.currency) == (UsageType.SINGLE, 5, "cny")
    assert batch.products == [course.product_bid]
    codes = CouponUsage.objects.filter(coupon_bid=batch.coupon_bid)
    assert codes.count() == 5
    assert set(codes.values_list("status", flat=True)) == {UsageStatus.AVAILABLE}
    assert len(set(codes.values_list("code", flat=True))) == 5
    assert "5 single-use codes generated" in response.content.decode()
    entry = LogEntry.objects.get(object_id=str(batch.pk))
    assert (entry.user_id, entry.change_message) == (staff.pk, "created with 5 codes")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": "150"}, "value"),
        ({"value": "0"}, "value"),
        ({"discount_type": "fixed", "value": "5.00"}, "currency"),
        ({"discount_type": "fixed", "value": "5.5", "currency": "jpy"}, "value"),
        ({"ends_at": when(-2)}, "ends_at"),
        ({"code": ""}, "code"),
        ({"code": "no spaces"}, "code"),
        ({"total_limit": ""}, "total_limit"),
        ({"usage": "single", "code": "SPRING15", "count": "3"}, "code"),
        ({"usage": "single", "code": "", "count": ""}, "count"),
    ],
)
def test_a_batch_the_api_would_refuse_is_refused_on_its_field(client, staff, overrides, field):
    response = client.post(ADD_BATCH, batch_form(**overrides))

    assert field in form_errors(response)
    assert not CouponBatch.objects.exists() and not CouponUsage.objects.exists()
    assert not LogEntry.objects.exists()


def test_a_fixed_batch_for_a_product_in_another_currency_or_a_taken_code_is_refused(client, staff):
    dollars = ProductFactory(currency="usd")
    shared(code="TAKEN1")
    fixed = {"discount_type": "fixed", "value": "5.00", "currency": "cny"}

    other_currency = client.post(ADD_BATCH, batch_form(products=[dollars.product_bid], **fixed))
    unknown = client.post(ADD_BATCH, batch_form(products=["no-such-product"]))
    taken = client.post(ADD_BATCH, batch_form(code="TAKEN1"))

    assert "not priced in CNY" in str(form_errors(other_currency)["products"])
    assert "products" in form_errors(unknown)
    assert "taken" in str(form_errors(taken)["code"])
    assert CouponBatch.objects.count() == 1


# ---- the list ----


def test_the_list_shows_each_batch_its_discount_and_figures(client, staff, course):
    _, code = shared(code="LIST10", percent="15", total_limit=10, name="Listed")
    buy(course, "u1", code)
    services.order_cancel(order=buy(course, "u2", code))
    single(count=3, fixed="5.00", products=[course.product_bid], name="Codes")

    page = client.get(BATCHES).content.decode()

    assert "LIST10" in page and "15 %" in page and "3 single-use codes" in page
    assert "CN¥5.00" in page and f"Course ({course.product_bid})" in page
    assert "total 10; per user 1" in page
    row = page.split("LIST10")[1].split("</tr>")[0]
    assert '<td class="field-reserved">1</td>' in row
    assert '<td class="field-released">1</td>' in row
    assert '<td class="field-available">9</td>' in row  # uses left of 10
    codes_row = page.split("3 single-use codes")[1].split("</tr>")[0]
    assert '<td class="field-available">3</td>' in codes_row


def test_the_list_reads_its_figures_in_the_same_queries_for_2_or_12_batches(client, staff):
    def queries_for_the_list():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(BATCHES).status_code == 200
        return len(queries)

    for n in range(2):
        single(count=2, name=f"batch {n}")
    few = queries_for_the_list()
    for n in range(10):
        single(count=2, name=f"more {n}")
    many = queries_for_the_list()

    assert few == many


def test_the_list_finds_a_batch_by_one_of_its_single_use_codes(client, staff):
    _, codes = single(count=2, name="Findable")
    shared(code="OTHER1", name="Other")

    page = client.get(BATCHES, {"q": codes[1]}).content.decode()

    assert "Findable" in page and "Other" not in page


# ---- a batch's page ----


def test_the_page_of_a_batch_shows_the_orders_that_used_its_codes(client, staff, course):
    batch, code = shared(code="PAGE15", percent="15")
    order = buy(course, "u9", code)

    page = client.get(change_url(batch)).content.decode()

    by_bid = reverse("admin:orders_order_by_bid", args=[order.order_bid])
    assert f'<a href="{by_bid}">{order.order_bid}</a>' in page
    assert "reserved (905)" in page and "CN¥44.85" in page and "u9" in page
    assert f"?coupon_bid__exact={batch.coupon_bid}" in page
    assert reverse("admin:promos_couponbatch_export", args=[batch.pk]) in page
    assert client.get(by_bid).url == reverse("admin:orders_order_change", args=[order.pk])


def test_a_batch_is_changed_within_what_is_held_and_the_change_is_recorded(client, staff, course):
    batch, code = shared(code="EDIT15", percent="15", total_limit=5)
    buy(course, "u1", code)
    buy(course, "u2", code)
    form = change_form(batch, name="Renamed", total_count="1")

    below = client.post(change_url(batch), form)
    done = client.post(change_url(batch), {**form, "total_count": "2", "value": "90"})

    assert "2 uses are held" in str(form_errors(below)["total_count"])
    assert done.status_code == 302
    batch.refresh_from_db()
    assert (batch.name, batch.total_count, batch.used_count) == ("Renamed", 2, 2)
    assert (batch.value, batch.updated_user_bid) == (Decimal("15.00"), "alice")
    entry = LogEntry.objects.get(object_id=str(batch.pk), action_flag=CHANGE)
    assert entry.user_id == staff.pk and "Name" in entry.change_message


def change_form(batch, **overrides) -> dict:
    start, end = timezone.localtime(batch.start), timezone.localtime(batch.end)
    data = {
        "name": batch.name,
        "status": batch.status,
        "start_0": start.strftime("%Y-%m-%d"),
        "start_1": start.strftime("%H:%M:%S"),
        "end_0": end.strftime("%Y-%m-%d"),
        "end_1": end.strftime("%H:%M:%S"),
        "total_count": str(batch.total_count),
        "per_user_limit": str(batch.per_user_limit),
        "release_on_refund": "on",
    }
    data.update(overrides)
    return data


def test_a_legacy_batch_without_author_keeps_working_when_staff_rename_it(client, staff):
    batch, _ = shared(code="OLD123")
    CouponBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.INACTIVE)
    batch.refresh_from_db()
    assert batch.enabled  # the old system's rule: no author, whatever the status

    shown = client.get(change_url(batch)).context["adminform"].form["status"].value()
    saved = client.post(change_url(batch), change_form(batch, name="Old", status=shown))

    assert (shown, saved.status_code) == (BatchStatus.ACTIVE, 302)
    batch.refresh_from_db()
    assert (batch.name, batch.status, batch.updated_user_bid) == ("Old", 1, "alice")
    assert batch.enabled


def test_an_old_batch_without_a_per_user_cap_is_switched_off_as_it_is(client, staff):
    batch, _ = shared(code="NOCAP1")
    CouponBatch.objects.filter(pk=batch.pk).update(per_user_limit=0)
    batch.refresh_from_db()

    saved = client.post(change_url(batch), change_form(batch, status=BatchStatus.INACTIVE))
    new = client.post(change_url(shared(code="CAPPED")[0]), change_form(batch, per_user_limit="0"))

    assert saved.status_code == 302
    batch.refresh_from_db()
    assert (batch.status, batch.per_user_limit) == (BatchStatus.INACTIVE, 0)
    assert "At least 1." in str(form_errors(new)["per_user_limit"])


def test_batches_are_never_deleted(client, staff):
    batch, _ = shared(code="KEEP12")

    response = client.post(reverse("admin:promos_couponbatch_delete", args=[batch.pk]), {})

    assert response.status_code == 403
    assert CouponBatch.objects.filter(pk=batch.pk).exists()


# ---- export ----


def test_the_export_streams_each_code_and_use_of_the_batch(client, staff, course):
    batch, codes = single(count=3, percent="10", name="Export")
    order = buy(course, "u7", codes[0])
    shared(code="NOTME1")

    response = client.get(reverse("admin:promos_couponbatch_export", args=[batch.pk]))

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f"coupon-{batch.coupon_bid}.csv" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert tuple(rows[0]) == EXPORT_HEADER
    assert sorted(row[2] for row in rows[1:]) == sorted(codes)
    used = next(row for row in rows[1:] if row[2] == codes[0])
    assert used[3:8] == ["reserved", order.order_bid, "u7", "29.90", "cny"]
    free = [row for row in rows[1:] if row[2] != codes[0]]
    assert {row[3] for row in free} == {"available"} and {row[4] for row in free} == {""}


def test_the_export_action_streams_the_selected_batches(client, staff, course):
    first, code = shared(code="=FORMULA", name="Shared")
    buy(course, "u1", code)
    second, codes = single(count=2, name="Single")

    response = client.post(
        BATCHES,
        {"action": "export_selected", "_selected_action": [first.pk, second.pk]},
    )

    assert response.streaming
    rows = csv_rows(response)[1:]
    assert [row[2:4] for row in rows[:2]] == [
        ["'=FORMULA", "shared code"],
        ["'=FORMULA", "reserved"],
    ]
    assert sorted(row[2] for row in rows[2:]) == sorted(codes)


def test_the_export_needs_the_view_permission(client, course):
    batch, _ = single(count=1)
    client.force_login(UserFactory(username="nobody", is_staff=True))

    response = client.get(reverse("admin:promos_couponbatch_export", args=[batch.pk]))

    assert response.status_code == 403


# ---- uses ----


def test_the_uses_list_is_filtered_by_batch_and_links_each_use(client, staff, course):
    batch, code = shared(code="USES10", name="Mine")
    _, other_code = shared(code="OTHER10", name="Theirs")
    order = buy(course, "u1", code)
    buy(ProductFactory(), "u2", other_code)

    page = client.get(USES, {"coupon_bid__exact": batch.coupon_bid}).content.decode()

    assert "USES10" in page and "OTHER10" not in page
    assert reverse("admin:orders_order_by_bid", args=[order.order_bid]) in page
    assert reverse("admin:promos_couponbatch_by_bid", args=[batch.coupon_bid]) in page
    assert client.get(reverse("admin:promos_couponbatch_by_bid", args=[batch.coupon_bid])).url == (
        change_url(batch)
    )
    assert client.get(USES, {"q": order.order_bid}).content.decode().count("USES10") >= 1
    add = client.post(reverse("admin:promos_couponusage_add"), {"code": "X"})
    assert add.status_code == 403


# ---- promotions ----


def campaign_form(course, **overrides) -> dict:
    data = {
        "name": "Summer",
        "description": "",
        "product": course.product_bid,
        "discount_type": DiscountType.PERCENT,
        "value": "20",
        "apply_type": 2101,
        "status": 1,
    }
    data.update(overrides)
    for name, days in (("start_at", -1), ("end_at", 10)):
        moment = data.pop(name, when(days))
        data[f"{name}_0"], data[f"{name}_1"] = moment["date"], moment["time"]
    return data


def test_a_promotion_is_added_with_its_author_and_the_products_currency(client, staff, course):
    percent = client.post(ADD_CAMPAIGN, campaign_form(course))
    fixed = client.post(
        ADD_CAMPAIGN,
        campaign_form(course, name="Minus ten", discount_type=DiscountType.FIXED, value="10.00"),
    )

    assert percent.status_code == 302 and fixed.status_code == 302
    summer, minus = Campaign.objects.order_by("id")
    assert (summer.shifu_bid, summer.currency, summer.value) == (
        course.product_bid,
        "",
        Decimal("20.00"),
    )
    assert (minus.currency, minus.created_user_bid, minus.updated_user_bid) == (
        "cny",
        "alice",
        "alice",
    )
    assert LogEntry.objects.filter(object_id=str(minus.pk), user=staff).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": "150"}, "value"),
        ({"discount_type": DiscountType.FIXED, "value": "5.50", "currency": "jpy"}, "value"),
        ({"discount_type": DiscountType.FIXED, "value": "0"}, "value"),
        ({"end_at": when(-2)}, "end_at"),
        ({"product": "no-such-product"}, "product"),
    ],
)
def test_a_promotion_with_a_bad_value_window_or_product_is_refused(client, staff, overrides, field):
    overrides = dict(overrides)
    product = ProductFactory(currency=overrides.pop("currency", "cny"), price=Decimal("500"))

    response = client.post(ADD_CAMPAIGN, campaign_form(product, **overrides))

    assert field in form_errors(response)
    assert not Campaign.objects.exists()


def test_the_promotion_list_shows_what_each_took_off(client, staff, course):
    campaign(course.product_bid, percent="10", name="Ten off")
    buy(course, "u1")
    services.order_cancel(order=buy(course, "u2"))
    buy(course, "u3")
    campaign(ProductFactory().product_bid, fixed="1.00", name="Idle")

    page = client.get(CAMPAIGNS).content.decode()

    row = page.split("Ten off")[1].split("</tr>")[0]
    assert '<td class="field-applied">2</td>' in row
    assert '<td class="field-voided">1</td>' in row
    assert "CN¥59.80" in row and "10 %" in row
    assert "CN¥1.00" in page.split("Idle")[1]
    redemptions = client.get(reverse("admin:promos_campaignredemption_changelist"))
    assert redemptions.status_code == 200 and "Ten off" in redemptions.content.decode()


# ---- bulk grant ----


def grant(client, product, text, reason="Partner school"):
    return client.post(GRANT, {"product": product.product_bid, "user_bids": text, "reason": reason})


def test_a_bulk_grant_grants_each_user_once_and_says_what_became_of_each(client, staff, course):
    services.entitlement_grant(
        user_bid="owner", product_bid=course.product_bid, reason="earlier", source="test"
    )

    response = grant(client, course, "u1\n\n u2 , u2\nbad!bid\nowner\n")

    page = response.content.decode()
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.granted, report.owned) == (["u1", "u2"], ["owner"])
    assert [(bid, code) for bid, code, _ in report.refused] == [("bad!bid", "invalid")]
    assert '<strong class="granted">2</strong>' in page
    assert '<strong class="owned">1</strong>' in page
    assert '<strong class="refused">1</strong>' in page and "bad!bid" in page
    paid = Order.objects.filter(product_bid=course.product_bid, status=OrderStatus.PAID)
    assert sorted(paid.values_list("user_bid", flat=True)) == ["owner", "u1", "u2"]
    granted = paid.get(user_bid="u1")
    assert granted.events.filter(source="admin:alice").exists()
    entry = LogEntry.objects.get(object_id=str(course.pk), user=staff)
    assert "granted to 2 users: u1, u2" in entry.change_message
    assert "Partner school" in entry.change_message


def test_a_bulk_grant_past_its_time_offers_the_users_not_reached(
    client, staff, course, monkeypatch
):
    monkeypatch.setattr(grants, "GRANT_SECONDS", 0)

    response = grant(client, course, "a\nb\nc")

    report = response.context["report"]
    assert (report.granted, report.left) == (["a"], ["b", "c"])
    assert response.context["form"].initial["user_bids"] == "b\nc"
    assert '<strong class="left">2</strong>' in response.content.decode()
    assert "2 not reached" in LogEntry.objects.get(object_id=str(course.pk)).change_message
    assert Order.objects.filter(product_bid=course.product_bid).count() == 1


def test_a_bulk_grant_of_an_unknown_product_or_too_many_users_is_refused_by_the_form(client, staff):
    unknown = client.post(GRANT, {"product": "nope", "user_bids": "u1", "reason": "x"})
    many = grant(client, ProductFactory(), ",".join(f"u{n}" for n in range(5001)))

    assert "product" in unknown.context["form"].errors
    assert "user_bids" in many.context["form"].errors
    assert not Order.objects.exists() and not LogEntry.objects.exists()


def test_the_bulk_grant_needs_the_add_order_permission_and_is_linked(client, course):
    agent = UserFactory(username="agent", is_staff=True)
    agent.user_permissions.set(
        Permission.objects.filter(codename__in=["view_product", "view_couponbatch"])
    )
    client.force_login(agent)

    assert client.get(GRANT).status_code == 403
    assert grant(client, course, "u1").status_code == 403
    assert GRANT not in client.get(PRODUCTS).content.decode()
    assert GRANT not in client.get(BATCHES).content.decode()
    assert not Order.objects.exists()

    agent.user_permissions.add(Permission.objects.get(codename="add_order"))
    assert GRANT in client.get(PRODUCTS).content.decode()
    assert GRANT in client.get(BATCHES).content.decode()
    assert GRANT in client.get(reverse("admin:app_list", args=["orders"])).content.decode()
    assert client.get(GRANT).status_code == 200


# ---- the order's page ----


def test_the_order_page_shows_its_price_lines(client, staff, course):
    campaign(course.product_bid, percent="10", name="Launch")
    _, code = shared(code="STACK5", fixed="5.00", stacks=True, name="Welcome")
    order = buy(course, "u1", code)

    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    lines = page.split("field-price_lines")[1]
    assert "<td>List price</td><td>CN¥299.00</td>" in lines
    assert "<td>promotion: Launch</td><td>-CN¥29.90</td>" in lines
    assert "<td>coupon: Welcome (STACK5)</td><td>-CN¥5.00</td>" in lines
    assert "<td>Amount due</td><td>CN¥264.10</td>" in lines


def test_an_activation_batch_is_listed_for_its_product(client, staff, course):
    from promos.batches import batch_create

    batch, _ = batch_create(spec=activation_spec(course.product_bid, count=2), actor=staff)

    page = client.get(BATCHES).content.decode()

    assert "2 single-use codes" in page and "100 %" in page
    assert f"Course ({course.product_bid})" in page
    assert LogEntry.objects.get(object_id=str(batch.pk)).user_id == staff.pk


def test_a_promotion_is_changed_with_its_author_and_a_legacy_one_stays_in_force(
    client, staff, course
):
    legacy = campaign(course.product_bid, percent="10", name="Old")
    Campaign.objects.filter(pk=legacy.pk).update(status=0, created_user_bid="")
    start, end = timezone.localtime(legacy.start_at), timezone.localtime(legacy.end_at)
    dated = {"date": start.strftime("%Y-%m-%d"), "time": start.strftime("%H:%M:%S")}
    ends = {"date": end.strftime("%Y-%m-%d"), "time": end.strftime("%H:%M:%S")}

    shown = client.get(change_url(legacy)).context["adminform"].form["status"].value()
    response = client.post(
        change_url(legacy),
        campaign_form(course, name="Old", value="12", status=shown, start_at=dated, end_at=ends),
    )

    assert (shown, response.status_code) == (1, 302)
    legacy.refresh_from_db()
    assert (legacy.value, legacy.status, legacy.updated_user_bid) == (Decimal("12.00"), 1, "alice")
    assert legacy.created_user_bid == ""
    assert LogEntry.objects.get(object_id=str(legacy.pk), action_flag=CHANGE).user_id == staff.pk


def test_the_refund_page_says_what_was_paid_after_discounts(admin_client):
    product = ProductFactory(price=Decimal("299.00"))
    _, code = shared(code="REFUND15", percent="15")
    order = pay(buy(product, code=code))
    page = admin_client.get(f"/admin/orders/order/{order.pk}/refund/").content.decode()
    assert "Paid CN¥254.15 after discounts (list price CN¥299.00, CN¥44.85 off)" in page
