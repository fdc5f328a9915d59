"""factory_boy factories for the models of both apps."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from orders.models import Order, OrderStatus, Product, Refund, RefundStatus, new_bid
from payments.models import (
    AttemptStatus,
    InboxStatus,
    PingxxOrder,
    SignatureStatus,
    StripeOrder,
    WebhookEvent,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("password")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    product_bid = factory.LazyFunction(new_bid)
    name = factory.Sequence(lambda n: f"Course {n}")
    price = Decimal("19.90")
    currency = "cny"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    order_bid = factory.LazyFunction(new_bid)
    product_bid = factory.LazyFunction(new_bid)
    user_bid = factory.LazyFunction(new_bid)
    payable_price = Decimal("19.90")
    paid_price = Decimal("0.00")
    status = OrderStatus.INIT
    payment_channel = "pingxx"
    currency = "cny"

    class Params:
        paid = factory.Trait(
            status=OrderStatus.PAID, paid_price=factory.SelfAttribute("payable_price")
        )


class PingxxOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PingxxOrder

    order_bid = factory.LazyFunction(new_bid)
    user_bid = factory.LazyFunction(new_bid)
    product_bid = factory.LazyFunction(new_bid)
    transaction_no = factory.LazyFunction(new_bid)
    app_id = "app_TestApp000000001"
    channel = "alipay_qr"
    amount = 1990
    currency = "CNY"
    subject = "Course"
    body = "Course purchase"
    client_ip = "127.0.0.1"
    status = AttemptStatus.PENDING
    charge_id = factory.Sequence(lambda n: f"ch_{n:024d}")
    charge_object = factory.LazyAttribute(
        lambda o: (
            f'{{"id": "{o.charge_id}", "object": "charge", "amount": {o.amount}, '
            f'"currency": "cny", "order_no": "{o.transaction_no}"}}'
        )
    )


class StripeOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StripeOrder

    order_bid = factory.LazyFunction(new_bid)
    user_bid = factory.LazyFunction(new_bid)
    product_bid = factory.LazyFunction(new_bid)
    payment_intent_id = factory.Sequence(lambda n: f"pi_{n:024d}")
    amount = 1990
    currency = "usd"
    status = AttemptStatus.PENDING
    metadata = factory.LazyAttribute(lambda o: {"order_bid": o.order_bid})


class RefundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Refund

    order = factory.SubFactory(OrderFactory, paid=True)
    payment_channel = factory.SelfAttribute("order.payment_channel")
    amount = Decimal("5.00")
    currency = factory.SelfAttribute("order.currency")
    status = RefundStatus.PENDING
    reason = "requested by customer"


class WebhookEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    channel = "pingxx"
    event_id = factory.Sequence(lambda n: f"evt_{n:024d}")
    event_type = "charge.succeeded"
    signature_status = SignatureStatus.VALID
    status = InboxStatus.RECEIVED
    body = '{"id": "evt", "type": "charge.succeeded", "data": {"object": {}}}'
    payload = factory.LazyAttribute(lambda o: {"id": o.event_id, "type": o.event_type})
