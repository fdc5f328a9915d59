"""A small server-rendered shop for trying the service: products, buy, pay."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from orders import selectors, services
from orders.models import Order, OrderStatus
from payments import registry
from payments_project.errors import ServiceError


def shop(request: HttpRequest) -> HttpResponse:
    context = {
        "products": selectors.products_on_sale(),
        "channels": registry.enabled_channels(),
        "orders": selectors.orders_for_user(request.user)[:20]
        if request.user.is_authenticated
        else [],
    }
    return render(request, "orders/shop.html", context)


@login_required
@require_POST
def buy(request: HttpRequest, product_bid: str) -> HttpResponse:
    try:
        order, _ = services.order_create(
            user_bid=selectors.user_bid_for(request.user),
            product_bid=product_bid,
            actor=request.user,
        )
        if order.status == OrderStatus.PAID:  # a free product is paid at once
            return redirect("shop-order", order_bid=order.order_bid)
        started = services.payment_start(
            order=order,
            channel=request.POST.get("channel") or None,
            client_ip=request.META.get("REMOTE_ADDR", "127.0.0.1"),
            actor=request.user,
        )
    except ServiceError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
        return redirect("shop")
    if "confirm_url" in started.client_data:
        return redirect(started.client_data["confirm_url"])
    return render(request, "orders/pay.html", {"started": started})


@login_required
def order_detail(request: HttpRequest, order_bid: str) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.live(), order_bid=order_bid, user_bid=selectors.user_bid_for(request.user)
    )
    return render(request, "orders/order.html", {"order": order})
