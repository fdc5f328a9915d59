"""A person buys a demo product with the sandbox channel, in the browser's steps."""

import json
import re
from decimal import Decimal

import pytest
import segno
from django.test import Client

from orders import views
from orders.models import Order, OrderStatus, Product
from payments.models import InboxStatus, PingxxOrder, SandboxAttempt, WebhookEvent
from payments.providers.sandbox import SandboxProvider
from tests.factories import ProductFactory, UserFactory
from tests.orders.conftest import STRIPE_PUBLISHABLE_KEY, STRIPE_SECRET_KEY


@pytest.fixture
def sandbox_only(settings):
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = []  # with DEBUG, the sandbox is the default


@pytest.mark.django_db
def test_buy_with_the_sandbox_and_find_it_in_the_admin(client, admin_client, sandbox_only):
    product = ProductFactory(name="Django in Production", price=Decimal("299.00"))
    user = UserFactory()
    client.force_login(user)
    page = client.get("/")
    assert b"Django in Production" in page.content and b"sandbox" in page.content

    response = client.post(f"/buy/{product.product_bid}/", {"channel": "sandbox"})
    assert response.status_code == 302 and response["Location"].startswith("/sandbox/pay/")
    confirm_page = client.get(response["Location"])
    assert "CN¥299.00".encode() in confirm_page.content

    paid = client.post(response["Location"], {"action": "pay"})
    order = Order.objects.get(user_bid=str(user.pk))
    # Back on the order's page, which says paid and shows a receipt.
    assert paid["Location"] == f"/orders/{order.order_bid}/"
    paid = client.get(paid["Location"])
    assert b'id="order-status">paid<' in paid.content and b'id="receipt"' in paid.content
    assert b'data-state="paid"' in paid.content and b"order-poll" not in paid.content
    # The shop knows the course is the buyer's now, and so does their list of orders.
    shop = client.get("/").content.decode()
    card = shop.split(f'id="product-{product.product_bid}"')[1].split("</section>")[0]
    assert "View receipt" in card and "Pay with" not in card
    mine = client.get("/orders/").content.decode()
    assert "Django in Production" in mine and "CN¥299.00" in mine
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("299.00")
    attempt = SandboxAttempt.objects.get(order_bid=order.order_bid)
    event = WebhookEvent.objects.get(channel="sandbox")
    assert event.status == InboxStatus.APPLIED

    order_page = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert order_page.status_code == 200
    for text in (order.order_bid, attempt.attempt_bid, "paid"):
        assert text.encode() in order_page.content
    inbox = admin_client.get(f"/admin/payments/webhookevent/?q={event.event_id}")
    assert event.event_id.encode() in inbox.content
    attempts = admin_client.get(f"/admin/payments/sandboxattempt/?q={attempt.attempt_bid}")
    assert attempts.status_code == 200 and attempt.attempt_bid.encode() in attempts.content


@pytest.mark.django_db
def test_a_free_course_is_got_without_a_channel(client, sandbox_only):
    product = ProductFactory(name="Intro", price=Decimal("0.00"))
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    form = page.split(f'id="product-{product.product_bid}"')[1].split("</form>")[0]
    assert "Get it free" in form and "Pay with" not in form and ">Free<" in form
    response = client.post(f"/buy/{product.product_bid}/", {"payment": ""})
    order = Order.objects.get()
    assert response["Location"] == f"/orders/{order.order_bid}/"
    assert order.status == OrderStatus.PAID and order.payment_channel == "free"
    assert b'data-state="paid"' in client.get(response["Location"]).content


@pytest.mark.django_db
def test_the_order_page_polls_its_state_until_the_payment_lands(client, sandbox_only):
    product = ProductFactory(price=Decimal("19.90"))
    buyer = UserFactory()
    client.force_login(buyer)
    confirm = client.post(f"/buy/{product.product_bid}/", {"payment": "sandbox:confirm_page"})
    order = Order.objects.get()
    page = client.get(f"/orders/{order.order_bid}/").content.decode()
    assert 'data-state="waiting"' in page and 'id="order-poll"' in page
    poll = json.loads(page.split('id="order-poll" type="application/json">')[1].split("<")[0])
    assert poll["url"] == f"/orders/{order.order_bid}/state/" and poll["every"] == 2000
    assert poll["state"] == "waiting" and poll["backoff"] > 1
    assert client.get(poll["url"]).json() == {"state": "waiting", "status": "unpaid"}

    client.post(confirm["Location"], {"action": "decline"})
    assert client.get(poll["url"]).json()["state"] == "failed"
    failed = client.get(f"/orders/{order.order_bid}/").content.decode()
    assert "Payment failed" in failed and "Nothing was charged." in failed
    # Try again: the same way to pay, on the same order.
    assert 'name="payment" value="sandbox:confirm_page">Try again<' in failed
    again = client.post(f"/buy/{product.product_bid}/", {"payment": "sandbox:confirm_page"})
    assert again["Location"].startswith("/sandbox/pay/") and Order.objects.count() == 1
    assert client.get(poll["url"]).json()["state"] == "waiting"
    # Another buyer learns nothing of it.
    other = Client()
    other.force_login(UserFactory())
    assert other.get(poll["url"]).status_code == 404

    Order.objects.filter(pk=order.pk).update(status=OrderStatus.TIMEOUT)
    assert client.get(poll["url"]).json() == {"state": "expired", "status": "timeout"}
    expired = client.get(f"/orders/{order.order_bid}/").content.decode()
    assert "Expired" in expired and "order-poll" not in expired


@pytest.mark.django_db
def test_sandbox_pages_are_gone_without_the_sandbox(client, settings):
    settings.DEBUG = False
    settings.PAYMENT_CHANNELS_ENABLED = ["pingxx"]
    assert client.get("/sandbox/pay/whatever/").status_code == 404
    assert (
        client.post("/webhooks/sandbox/", b"{}", content_type="application/json").status_code == 404
    )


# ---- every channel through the page ----

STRIPE_JS_URL = "http://127.0.0.1:9/stripe-double/v3/"


@pytest.fixture
def pingxx_channel(pingxx_settings):
    pingxx_settings.PAYMENT_CHANNELS_ENABLED = ["pingxx"]
    pingxx_settings.DEFAULT_PAYMENT_CHANNEL = "pingxx"
    return pingxx_settings


@pytest.fixture
def stripe_channel(settings, fake_stripe):
    settings.STRIPE_API_BASE = fake_stripe.base_url
    settings.STRIPE_SECRET_KEY = STRIPE_SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = STRIPE_PUBLISHABLE_KEY
    settings.STRIPE_JS_URL = STRIPE_JS_URL
    settings.STRIPE_CHECKOUT_SUCCESS_URL = ""
    settings.STRIPE_CHECKOUT_CANCEL_URL = ""
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.PAYMENT_CHANNELS_ENABLED = ["stripe"]
    settings.DEFAULT_PAYMENT_CHANNEL = "stripe"
    return settings


@pytest.fixture
def buyer(client):
    user = UserFactory()
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_each_way_to_pay_is_a_button_for_the_device_and_currency(client, buyer, pingxx_channel):
    pingxx_channel.PAYMENT_CHANNELS_ENABLED = ["pingxx", "sandbox"]
    ProductFactory(currency="cny")

    def buttons(**headers):
        page = client.get("/", **headers).content.decode()
        return re.findall(r'<button type="submit" class="pay" name="payment" value="([^"]*)"', page)

    computer = ["pingxx:alipay_qr", "pingxx:wx_pub_qr", "pingxx:alipay_pc_direct"]
    assert buttons() == [*computer, *(f"sandbox:{m}" for m in SandboxProvider.methods)]
    # A phone cannot scan its own screen: WeChat Pay's H5 page instead of QR codes.
    phone = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Mobile/15E148"}
    assert buttons(**phone) == ["pingxx:wx_wap", "sandbox:confirm_page"]
    assert "pingxx:wx_pub" not in buttons() + buttons(**phone)  # needs WeChat's open id
    # Ping++ takes CNY only: a USD course is offered the other channels.
    Product.objects.update(currency="usd")
    assert buttons() == ["sandbox:confirm_page"]
    assert "Pay with Alipay (QR code)" not in client.get("/").content.decode()


@pytest.mark.django_db
def test_pay_a_pingxx_qr_code_and_check_the_payment(client, buyer, pingxx_channel, pingxx_double):
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    page = client.post(f"/buy/{product.product_bid}/", {"payment": "pingxx:alipay_qr"})
    assert page.status_code == 200
    attempt = PingxxOrder.objects.get()
    qr_url = pingxx_double.charges[attempt.charge_id]["credential"]["alipay_qr"]
    html = page.content.decode()
    assert views.qr_svg(qr_url) == segno.make(qr_url, error="m").svg_inline(
        scale=5, title="QR code to pay", svgclass="qr"
    )
    assert views.qr_svg(qr_url) in html and "<svg" in html
    assert "CN¥19.90" in html and "<img" not in html
    assert 'name="csrfmiddlewaretoken"' in html

    order = Order.objects.get()
    checked = client.post(f"/orders/{order.order_bid}/sync/", follow=True)
    assert b'id="order-status">unpaid<' in checked.content

    pingxx_double.pay(attempt.charge_id)
    checked = client.post(f"/orders/{order.order_bid}/sync/", follow=True)
    assert b'id="order-status">paid<' in checked.content
    assert attempt.charge_id.encode() in checked.content  # on the receipt
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("19.90")


@pytest.mark.django_db
def test_other_pingxx_methods_show_the_credential(client, buyer, pingxx_channel, pingxx_double):
    product = ProductFactory(price=Decimal("5.00"), currency="cny")
    page = client.post(f"/buy/{product.product_bid}/", {"payment": "pingxx:alipay_pc_direct"})
    assert page.status_code == 200, page.content
    assert b'id="credential"' in page.content and b"<svg" not in page.content


@pytest.mark.django_db
def test_a_pingxx_outage_is_a_message_not_a_server_error(
    client, buyer, pingxx_channel, pingxx_double
):
    product = ProductFactory(currency="cny")
    pingxx_double.fail_next(500)
    page = client.post(f"/buy/{product.product_bid}/", {"payment": "pingxx:alipay_qr"}, follow=True)
    assert page.status_code == 200
    messages = [(str(m), m.tags) for m in page.context["messages"]]
    assert messages == [("Ping++ answered HTTP 500.", "provider_unavailable error")], messages
    # A sentence for the buyer; the stable code as the message's class.
    assert b'<li class="provider_unavailable error">Ping++ answered HTTP 500.</li>' in page.content


@pytest.mark.django_db
def test_pay_with_the_stripe_payment_element(client, buyer, stripe_channel, fake_stripe):
    product = ProductFactory(price=Decimal("12.00"), currency="usd")
    page = client.post(f"/buy/{product.product_bid}/", {"payment": "stripe:payment_intent"})
    assert page.status_code == 200, page.content
    html = page.content.decode()
    assert f'<script src="{STRIPE_JS_URL}"></script>' in html
    options = json.loads(
        re.search(r'<script id="stripe-options" type="application/json">(.*?)</script>', html)[1]
    )
    intent = next(iter(fake_stripe.payment_intents.values()))
    order = Order.objects.get()
    assert options == {
        "publishableKey": STRIPE_PUBLISHABLE_KEY,
        "clientSecret": intent["client_secret"],
        "returnUrl": f"http://testserver/orders/{order.order_bid}/",
    }
    assert html.count(intent["client_secret"]) == 1  # only inside the JSON block
    assert "stripe.confirmPayment" in html and 'id="payment-element"' in html

    fake_stripe.succeed(intent["id"])
    checked = client.post(f"/orders/{order.order_bid}/sync/", follow=True)
    assert b'id="order-status">paid<' in checked.content


@pytest.mark.django_db
def test_stripe_checkout_redirects_to_the_checkout_page(client, buyer, stripe_channel, fake_stripe):
    product = ProductFactory(price=Decimal("12.00"), currency="usd")
    response = client.post(
        f"/buy/{product.product_bid}/", {"payment": "stripe:checkout_session"}, secure=True
    )
    session = next(iter(fake_stripe.sessions.values()))
    assert response.status_code == 302 and response["Location"] == session["url"]
    order_url = f"https://testserver/orders/{Order.objects.get().order_bid}/"
    assert session["success_url"] == session["cancel_url"] == order_url


@pytest.mark.django_db
def test_a_checkout_return_url_off_the_allowed_hosts_is_a_message(
    client, buyer, stripe_channel, fake_stripe
):
    stripe_channel.ALLOWED_HOSTS = ["testserver", "*"]
    product = ProductFactory(currency="usd")
    response = client.post(
        f"/buy/{product.product_bid}/",
        {"payment": "stripe:checkout_session"},
        secure=True,
        headers={"host": "elsewhere.example"},
        follow=True,
    )
    assert response.status_code == 200 and not fake_stripe.sessions
    assert b'class="payment_method_invalid error"' in response.content


@pytest.mark.django_db
def test_only_the_owner_sees_or_checks_an_order(client, buyer, sandbox_only):
    product = ProductFactory()
    client.post(f"/buy/{product.product_bid}/", {"payment": "sandbox:confirm_page"})
    order = Order.objects.get()
    assert client.get(f"/orders/{order.order_bid}/").status_code == 200
    client.force_login(UserFactory())
    assert client.get(f"/orders/{order.order_bid}/").status_code == 404
    assert client.post(f"/orders/{order.order_bid}/sync/").status_code == 404
    assert client.get(f"/orders/{order.order_bid}/sync/").status_code == 405


@pytest.mark.django_db
def test_posts_need_the_csrf_token(buyer, sandbox_only):
    product = ProductFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(buyer)
    assert client.post(f"/buy/{product.product_bid}/").status_code == 403
    assert not Order.objects.exists()


# ---- ownership: another user and an anonymous visitor ----


@pytest.mark.django_db
def test_only_the_buyer_can_pay_on_the_sandbox_confirm_page(client, sandbox_only):
    from orders import services
    from tests.factories import StaffFactory

    product = ProductFactory(price=Decimal("19.90"))
    buyer, other = UserFactory(), UserFactory()
    order, _ = services.order_create(user_bid=str(buyer.pk), product_bid=product.product_bid)
    url = f"/sandbox/pay/{services.payment_start(order=order).attempt.attempt_bid}/"

    anonymous = client.post(url, {"action": "pay"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert client.get(url).status_code == 302

    client.force_login(other)
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "pay"}).status_code == 404

    client.force_login(StaffFactory())
    assert client.get(url).status_code == 200  # staff may look
    assert client.post(url, {"action": "pay"}).status_code == 404  # but not pay

    order.refresh_from_db()
    assert order.status != OrderStatus.PAID
    assert not WebhookEvent.objects.exists()

    client.force_login(buyer)
    assert client.post(url, {"action": "pay"}).status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


@pytest.mark.django_db
def test_every_order_page_and_endpoint_is_the_owners_only(client, sandbox_only):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from tests.factories import RefundFactory
    from tests.sandbox import paid_through_sandbox

    buyer, other = UserFactory(), UserFactory()
    order = paid_through_sandbox(user_bid=str(buyer.pk))
    refund = RefundFactory(order=order, amount=Decimal("1.00"))
    pages = [
        ("get", f"/orders/{order.order_bid}/"),
        ("post", f"/orders/{order.order_bid}/sync/"),
    ]
    api = [
        ("get", f"/api/orders/{order.order_bid}/"),
        ("post", f"/api/orders/{order.order_bid}/pay/"),
        ("post", f"/api/orders/{order.order_bid}/sync/"),
        ("post", f"/api/orders/{order.order_bid}/cancel/"),
        ("get", f"/api/refunds/{refund.refund_bid}/"),
    ]
    for method, path in pages:  # anonymous: to the login page
        response = getattr(client, method)(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path
    client.force_login(other)
    for method, path in pages:
        assert getattr(client, method)(path).status_code == 404, path
    for method, path in api:
        response = getattr(APIClient(), method)(path, {}, format="json")
        assert response.status_code == 401, (path, response.status_code)
        assert response.json()["code"] == "not_authenticated"
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other).key}")
    for method, path in api:
        response = getattr(stranger, method)(path, {}, format="json")
        assert response.status_code == 404, (path, response.status_code)
        assert response.json()["code"] == "not_found"
    assert stranger.get("/api/orders/").json()["results"] == []
    assert stranger.get("/api/refunds/").json()["results"] == []
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


@pytest.mark.django_db
def test_a_phone_is_sent_to_wechat_pays_h5_page(client, buyer, pingxx_channel, pingxx_double):
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    response = client.post(
        f"/buy/{product.product_bid}/",
        {"payment": "pingxx:wx_wap"},
        HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 15) Mobile Safari/537.36",
    )
    attempt = PingxxOrder.objects.get()
    assert response.status_code == 302
    assert response["Location"] == pingxx_double.charges[attempt.charge_id]["credential"]["wx_wap"]
    assert response["Location"].startswith("https://wx.tenpay.com/")


@pytest.mark.django_db
def test_the_direct_channels_ways_to_pay_by_device(
    client, buyer, alipay_settings, wechatpay_settings
):
    alipay_settings.PAYMENT_CHANNELS_ENABLED = ["alipay", "wechatpay"]
    alipay_settings.DEFAULT_PAYMENT_CHANNEL = "alipay"
    ProductFactory(currency="cny")

    def buttons(**headers):
        page = client.get("/", **headers).content.decode()
        return re.findall(r'<button type="submit" class="pay" name="payment" value="([^"]*)"', page)

    assert buttons() == ["alipay:alipay_qr", "alipay:alipay_pc_direct", "wechatpay:wx_pub_qr"]
    phone = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Mobile/15E148"}
    assert buttons(**phone) == ["alipay:alipay_wap", "wechatpay:wx_wap"]


@pytest.mark.django_db
def test_a_phone_is_sent_to_alipays_phone_page(client, buyer, alipay_channel, alipay_double):
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    response = client.post(
        f"/buy/{product.product_bid}/",
        {"payment": "alipay:alipay_wap"},
        HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 15) Mobile Safari/537.36",
    )
    assert response.status_code == 302
    assert response["Location"].startswith(alipay_double.gateway_url + "?")
    trade = alipay_double.open_page(response["Location"])  # the gateway takes its signature
    assert trade["total_amount"] == "19.90"
