"""Coupon batches made by staff (the admin, the API): a shared code, or N single-use
codes generated at once. Each change is written to the admin's history with who made
it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import IntegrityError, transaction

from payments_project.db import Deleted
from promos.errors import CouponError
from promos.models import (
    BatchStatus,
    CouponBatch,
    CouponUsage,
    DiscountType,
    IssuedCode,
    UsageStatus,
    UsageType,
)

# Upper-case letters and digits without the look-alikes 0/O, 1/I/L: 31 symbols.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12  # 31**12, about 7.9e17 codes: not guessable, even with millions issued
MAX_CODES = 50_000


class CodeTaken(CouponError):
    code = "coupon_code_taken"
    http_status = 409


@dataclass(frozen=True)
class BatchSpec:
    name: str
    discount_type: int
    value: Decimal
    currency: str
    starts_at: datetime
    ends_at: datetime
    products: list[str]
    usage: int
    code: str = ""
    count: int = 0
    total_limit: int = 0
    per_user_limit: int = 1
    stacks_with_promotions: bool = False
    release_on_refund: bool = True


def code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def codes_new(count: int) -> list[str]:
    """``count`` codes that no batch and no code row holds yet."""
    codes: set[str] = set()
    while len(codes) < count:
        fresh = {code_new() for _ in range(count - len(codes))} - codes
        candidates = sorted(fresh)
        for start in range(0, len(candidates), 1000):
            chunk = candidates[start : start + 1000]
            taken = set(CouponUsage.objects.filter(code__in=chunk).values_list("code", flat=True))
            taken |= set(CouponBatch.objects.filter(code__in=chunk).values_list("code", flat=True))
            taken |= set(IssuedCode.objects.filter(code__in=chunk).values_list("code", flat=True))
            fresh -= taken
        codes |= fresh
    return sorted(codes)


def code_in_use(code: str) -> bool:
    """Whether a batch of this service or of the old system holds ``code``."""
    if IssuedCode.objects.filter(code=code).exists():
        return True
    live = CouponBatch.objects.filter(code=code, deleted=Deleted.ACTIVE).exists()
    return live or CouponUsage.objects.filter(code=code, deleted=Deleted.ACTIVE).exists()


@transaction.atomic
def batch_create(*, spec: BatchSpec, actor: Any) -> tuple[CouponBatch, list[str]]:
    """A batch as ``spec`` says, with its codes; (batch, codes)."""
    who = actor.get_username()[:36] if actor is not None else ""
    single = spec.usage == UsageType.SINGLE
    code = "" if single else spec.code.strip()
    if code and code_in_use(code):
        raise CodeTaken(f"The code {code!r} is taken by another coupon.", coupon=code)
    batch = CouponBatch.objects.create(
        name=spec.name,
        code=code,
        discount_type=spec.discount_type,
        usage_type=spec.usage,
        value=spec.value,
        currency=spec.currency if spec.discount_type == DiscountType.FIXED else "",
        start=spec.starts_at,
        end=spec.ends_at,
        filter=CouponBatch.scope_filter(spec.products),
        total_count=spec.count if single else spec.total_limit,
        status=BatchStatus.ACTIVE,
        created_user_bid=who,
        updated_user_bid=who,
        per_user_limit=spec.per_user_limit,
        stacks_with_promotions=spec.stacks_with_promotions,
        release_on_refund=spec.release_on_refund,
    )
    codes = codes_new(spec.count) if single else [code]
    try:
        with transaction.atomic():
            IssuedCode.objects.bulk_create(
                (IssuedCode(code=one, coupon_bid=batch.coupon_bid) for one in codes),
                batch_size=1000,
            )
    except IntegrityError:  # issued meanwhile by a batch made at the same moment
        raise CodeTaken("A code of this batch was just taken by another batch.") from None
    if single:
        CouponUsage.objects.bulk_create(
            (
                CouponUsage(
                    coupon_bid=batch.coupon_bid,
                    name=batch.name[:255],
                    code=one,
                    discount_type=batch.discount_type,
                    value=batch.value,
                    status=UsageStatus.AVAILABLE,
                )
                for one in codes
            ),
            batch_size=1000,
        )
    history_write(
        actor=actor,
        obj=batch,
        action=ADDITION,
        message=f"created with {len(codes)} code{'s' if len(codes) != 1 else ''}",
    )
    return batch, codes


def batch_codes(batch: CouponBatch) -> list[str]:
    if batch.usage_type != UsageType.SINGLE:
        return [batch.code] if batch.code else []
    return list(
        CouponUsage.objects.filter(coupon_bid=batch.coupon_bid, deleted=Deleted.ACTIVE)
        .exclude(status=UsageStatus.RELEASED)
        .order_by("code")
        .values_list("code", flat=True)
    )


def history_write(*, actor: Any, obj, action: int = CHANGE, message: str) -> None:
    """One line of ``obj``'s history in the admin, with who made the change."""
    if actor is None or not getattr(actor, "pk", None):
        return
    LogEntry.objects.log_actions(
        user_id=actor.pk,
        queryset=[obj],
        action_flag=action,
        change_message=message,
        single_object=True,
    )
