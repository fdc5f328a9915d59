"""Template filters on every page (a builtin library, settings.TEMPLATES): money as the
reader reads it, through ``payments_project.money``.

``{{ order.paid_price|money:order.currency }}`` -> ``CN¥19.90``;
``{{ attempt.amount|minor_money:attempt.currency }}`` -> ``CN¥19.90`` from 1990.
"""

from django import template

from payments_project.money import format_minor, format_money

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    return format_money(amount, currency)


@register.filter
def minor_money(amount, currency: str) -> str:
    return format_minor(amount, currency)
