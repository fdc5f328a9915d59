"""A small server-rendered shop for trying the service: products, buy, pay, check."""

from __future__ import annotations

import json
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from orders import checkout, selectors, services
from orders.models import Order, OrderStatus, Product
from payments import registry
from payments.models import SandboxAttempt
from payments.providers.base import ProviderRequestRefused
from payments.tasks import webhook_deliver
from payments_project.errors import ServiceError


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as an inline SVG element (made here, no image service)."""
    return segno.make(url, error="m", micro=False).svg_inline(
        scale=5, title="QR code to pay", svgclass="qr"
    )


def _message(request: HttpRequest, exc: ServiceError) -> None:
    """The refusal as a sentence for the buyer; its stable code rides along as the
    message's class (``error already_purchased``), for scripts and tests."""
    messages.error(request, exc.message, extra_tags=exc.code)


def _own_order(request: HttpRequest, order_bid: str, orders=None) -> Order:
    """The buyer's own live order ``order_bid`` (of ``orders``, to read it with more),
    or 404."""
    orders = Order.objects.live() if orders is None else orders
    return get_object_or_404(
        orders, order_bid=order_bid, user_bid=selectors.user_bid_for(request.user)
    )


def shop(request: HttpRequest) -> HttpResponse:
    ways = checkout.ways_to_pay(request)
    products = list(selectors.products_on_sale())
    owned = {}
    if request.user.is_authenticated:
        owned = selectors.orders_owning(
            selectors.user_bid_for(request.user), [p.product_bid for p in products]
        )
    for product in products:
        product.ways = checkout.ways_for(product.currency, ways)
        product.owned_by = owned.get(product.product_bid, "")
    context = {"products": products, "any_way": bool(ways)}
    return render(request, "orders/shop.html", context)


@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    """The buyer's orders, newest first, with their course and state."""
    orders = list(selectors.orders_for_user(request.user)[:50])
    names = selectors.product_names(order.product_bid for order in orders)
    for order in orders:
        order.course_name = names.get(order.product_bid, order.product_bid)
    return render(request, "orders/my_orders.html", {"orders": orders})


@login_required
@require_POST
def buy(request: HttpRequest, product_bid: str) -> HttpResponse:
    try:
        order, _ = services.order_create(
            user_bid=selectors.user_bid_for(request.user),
            product_bid=product_bid,
            actor=request.user,
            coupon_code=request.POST.get("coupon_code", "")[:36],
            source="shop",
        )
    except ServiceError as exc:
        _message(request, exc)
        return redirect("shop")
    if order.status == OrderStatus.PAID:  # a free product is paid at once
        return redirect("shop-order", order_bid=order.order_bid)
    # Where the payer comes back to: this order's page, on the host of this request
    # (Stripe accepts it only on ALLOWED_HOSTS).
    order_url = request.build_absolute_uri(reverse("shop-order", args=[order.order_bid]))
    try:
        started = services.payment_start(
            order=order,
            channel=request.POST.get("payment") or request.POST.get("channel") or None,
            client_ip=request.META.get("REMOTE_ADDR", "127.0.0.1"),
            success_url=order_url,
            cancel_url=order_url,
            actor=request.user,
        )
    except ServiceError as exc:
        _message(request, exc)
        return redirect("shop-order", order_bid=order.order_bid)
    data = started.client_data
    if started.order.status == OrderStatus.PAID:
        return redirect("shop-order", order_bid=order.order_bid)
    # A page of the channel's own: the sandbox's, Stripe Checkout, WeChat Pay's H5 page.
    for page in ("confirm_url", "checkout_url", "redirect_url"):
        if data.get(page):
            return redirect(data[page])
    context: dict[str, Any] = {
        "started": started,
        "order": started.order,
        "attempt": started.attempt,
        **_poller(started.order, "waiting", go=order_url),
    }
    if data.get("client_secret"):
        context["stripe_js_url"] = settings.STRIPE_JS_URL
        context["stripe_options"] = {
            "publishableKey": data.get("publishable_key", ""),
            "clientSecret": data["client_secret"],
            "returnUrl": order_url,
        }
        return render(request, "payments/stripe_payment.html", context)
    if data.get("qr_url"):
        context["qr_svg"] = mark_safe(qr_svg(data["qr_url"]))  # noqa: S308 - segno's own SVG
        context["qr_url"] = data["qr_url"]
        return render(request, "payments/pingxx_qr.html", context)
    context["credential_json"] = json.dumps(data.get("credential", data), indent=2, sort_keys=True)
    return render(request, "payments/credential.html", context)


def _poller(order: Order, state: str, *, go: str = "") -> dict[str, Any]:
    """What a page's poller needs (templates/orders/_poll.html): where to ask, the state
    shown, and where to go when it changes (by default: reload the page)."""
    return {
        "poll": {
            "url": reverse("shop-order-state", args=[order.order_bid]),
            "state": state,
            "go": go,
            "every": checkout.POLL_MS,
            "backoff": checkout.POLL_BACKOFF,
            "max": checkout.POLL_MAX_MS,
            "giveUp": checkout.POLL_GIVE_UP_MS,
        }
    }


@login_required
def order_detail(request: HttpRequest, order_bid: str) -> HttpResponse:
    order = _own_order(request, order_bid, selectors.orders_with_paid_at(Order.objects.live()))
    attempt = selectors.order_latest_attempt(order)
    state = checkout.order_state(order, attempt)
    context = {
        "order": order,
        "state": state,
        "pay_again": checkout.way_of(order, attempt) if state in ("waiting", "failed") else "",
        "product": Product.objects.filter(product_bid=order.product_bid).first(),
        "lines": selectors.order_price_lines(order),
        "attempt": attempt,
        "can_sync": bool(order.payment_channel) and order.status in checkout.PAYABLE,
        "method_label": checkout.LABELS.get(
            f"{order.payment_channel}:{getattr(attempt, 'method_name', '')}", ""
        ),
    }
    if state in ("waiting", "failed"):
        context.update(_poller(order, state))
    return render(request, "orders/order.html", context)


@login_required
def order_state(request: HttpRequest, order_bid: str) -> JsonResponse:
    """How the buyer's order stands, for the pages' poller: one indexed read, no
    provider call (webhooks bring the news; *Check payment* asks the channel)."""
    order = _own_order(request, order_bid)
    state = checkout.order_state(order, selectors.order_latest_attempt(order))
    response = JsonResponse({"state": state, "status": order.status_name})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def order_sync(request: HttpRequest, order_bid: str) -> HttpResponse:
    """Ask the channel how the order's latest payment stands, then show the order."""
    order = _own_order(request, order_bid)
    try:
        order = services.payment_sync(order=order)
    except ServiceError as exc:
        _message(request, exc)
    else:
        messages.info(request, f"Checked with {order.payment_channel}: {order.status_name}.")
    return redirect("shop-order", order_bid=order.order_bid)


# ---- the sandbox's confirm page (the sandbox channel is for development only) ----


@require_http_methods(["GET", "POST"])
def sandbox_pay(request: HttpRequest, attempt_bid: str) -> HttpResponse:
    """The page a sandbox payment sends the user to: pay or decline."""
    if "sandbox" not in registry.enabled_channels():
        raise Http404("The sandbox channel is not enabled.")
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    attempt = SandboxAttempt.objects.filter(attempt_bid=attempt_bid).first()
    # Only the buyer pays or declines; staff may look. Anyone else learns nothing,
    # not even that the payment exists.
    own = attempt is not None and attempt.user_bid == selectors.user_bid_for(request.user)
    if attempt is None or not (own or request.user.is_staff):
        raise Http404("No such sandbox payment.")
    order = Order.objects.filter(order_bid=attempt.order_bid).first()
    if request.method == "POST" and not own:
        raise Http404("No such sandbox payment.")
    if request.method == "POST" and attempt.provider_state == "pending":
        provider = registry.get_provider("sandbox")
        try:
            body, headers = provider.complete(
                attempt_bid, succeeded=request.POST.get("action") == "pay"
            )
        except ProviderRequestRefused:  # closed meanwhile (the order was cancelled)
            return redirect("sandbox-pay", attempt_bid=attempt_bid)
        webhook_deliver(channel="sandbox", body=body, headers=headers, remote_addr="127.0.0.1")
        # Back to the order's page, as from any channel's page.
        return redirect("shop-order", order_bid=attempt.order_bid)
    attempt.refresh_from_db()
    if order is not None:
        order.refresh_from_db()
    product = order and Product.objects.filter(product_bid=order.product_bid).first()
    context = {"attempt": attempt, "order": order, "product": product}
    return render(request, "payments/sandbox_pay.html", context)
