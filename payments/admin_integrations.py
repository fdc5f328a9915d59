"""Admin of creators' own merchant accounts (payment integrations).

Superusers manage them (neither staff group is given any permission on them,
``orders/staff_groups.py``); a staff account limited to some creators is granted none by
the authentication backend, and would in any case be shown only its creators' accounts
(``CreatorBidScopedAdminMixin``).

An account's fields are its channel's (``merchant_fields`` of the provider class), so
adding one starts by choosing the channel (``?channel=alipay``); the form then shows that
channel's fields, named after it (``alipay__app_id``). Secret fields are write-only: the
form never renders a stored or a just-posted value, only the fingerprint kept in
``secret_hints``; a secret field left blank keeps its stored value. Saving goes through
``payments.integrations``, which checks the account with the channel's provider first:
what it refuses is a form error. Accounts are deactivated, never deleted: orders keep
naming the account they were paid through, whose keys refund and reconcile them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from payments import credentials
from payments.integrations import (
    integration_fields,
    integration_save,
    merchant_channels,
    provider_class,
    takes_integrations,
)
from payments.merchants import PaymentIntegration
from payments.providers.merchant import MerchantFields, notify_url
from payments_project.admin_utils import EMPTY, CreatorBidScopedAdminMixin, creator_scope
from payments_project.errors import InvalidInput

# Secret fields holding a PEM (keys, certificates) get a textarea, the others a password
# input.
PEM_PARTS = ("private_key", "public_key", "cert")
ACCOUNT_IDS = ("app_id", "mch_id")
OPTIONAL_HELP = "Optional: blank is the platform's default."


def field_key(channel: str, name: str) -> str:
    """The form field of ``channel``'s merchant field ``name``: ``alipay__app_id``."""
    return f"{channel}__{name}"


def merchant_fields(channel: str) -> MerchantFields:
    """``channel``'s merchant fields; none for a channel that takes no accounts."""
    if not channel or not takes_integrations(channel):
        return MerchantFields(public=(), secret=())
    return provider_class(channel).merchant_fields


class SecretTextarea(forms.Textarea):
    """A textarea for a PEM that is always rendered empty, even with what was just
    posted (a form shown again with its errors)."""

    def format_value(self, value: Any) -> None:
        return None


def secret_widget(name: str) -> forms.Widget:
    off = {"autocomplete": "off", "spellcheck": "false"}
    if any(part in name for part in PEM_PARTS):
        return SecretTextarea(attrs={"rows": 4, "cols": 70, **off})
    return forms.PasswordInput(render_value=False, attrs={**off, "autocomplete": "new-password"})


def secret_help(hint: str, optional: bool) -> str:
    if hint:
        return f"Stored: {hint}. Leave blank to keep it; it is never shown back."
    if optional:
        return "Not set (optional). Never shown back once saved."
    return "Not set. Never shown back once saved."


class IntegrationForm(forms.ModelForm):
    """The fields every account has; ``integration_form`` adds its channel's."""

    channel = forms.ChoiceField(
        disabled=True, help_text="Chosen when the account is added; it never changes."
    )

    merchant_channel = ""
    public_names: tuple[str, ...] = ()
    secret_names: tuple[str, ...] = ()
    scope: frozenset[str] | None = None

    class Meta:
        model = PaymentIntegration
        fields = ("channel", "creator_bid", "name", "active")
        help_texts = {
            "creator_bid": "The platform's id of the creator whose orders this account takes.",
            "active": (
                "Takes the creator's new orders on this channel. Accounts are never deleted "
                "(orders name the account they were paid through, and are refunded and "
                "reconciled with its keys): untick to stop taking new orders."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        channels = list(merchant_channels())
        if self.merchant_channel not in channels:
            channels.append(self.merchant_channel)
        self.fields["channel"].choices = [(channel, channel) for channel in channels]
        self.initial["channel"] = self.merchant_channel
        public = self.instance.public_config or {}
        for name in self.public_names:
            self.initial[field_key(self.merchant_channel, name)] = public.get(name, "")
        self.merchant_public: dict[str, str] = {}
        self.merchant_secret: dict[str, str] = {}

    def clean_creator_bid(self) -> str:
        creator_bid = self.cleaned_data["creator_bid"].strip()
        if self.scope is not None and creator_bid not in self.scope:
            raise ValidationError("You may manage the accounts of your own creators only.")
        return creator_bid

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        channel = self.merchant_channel
        public = {name: cleaned.get(field_key(channel, name)) or "" for name in self.public_names}
        # A PEM pasted in a browser's textarea comes back with CRLF line ends.
        secret = {
            name: (cleaned.get(field_key(channel, name)) or "").replace("\r\n", "\n")
            for name in self.secret_names
        }
        try:
            integration_fields(
                channel=channel,
                creator_bid=cleaned.get("creator_bid") or "",
                public=public,
                secret=secret,
                integration=self.instance if self.instance.pk else None,
            )
        except (InvalidInput, credentials.CredentialsLocked) as exc:
            raise ValidationError(exc.message) from None
        self.merchant_public, self.merchant_secret = public, secret
        return cleaned


def integration_form(
    channel: str, obj: PaymentIntegration | None, scope: frozenset[str] | None
) -> type[IntegrationForm]:
    """The form of an account of ``channel``, with the fingerprints of ``obj``'s secrets."""
    fields = merchant_fields(channel)
    hints = (obj.secret_hints if obj is not None else None) or {}
    attrs: dict[str, Any] = {
        "merchant_channel": channel,
        "public_names": fields.public,
        "secret_names": fields.secret,
        "scope": scope,
    }
    for name in fields.public:
        attrs[field_key(channel, name)] = forms.CharField(
            label=name,
            required=name not in fields.optional,
            help_text=OPTIONAL_HELP if name in fields.optional else "",
        )
    for name in fields.secret:
        hint = str(hints.get(name) or "")
        attrs[field_key(channel, name)] = forms.CharField(
            label=name,
            required=not hint and name not in fields.optional,
            strip=True,
            widget=secret_widget(name),
            help_text=secret_help(hint, name in fields.optional),
        )
    return type(f"{channel.title()}IntegrationForm", (IntegrationForm,), attrs)


def credentials_problem(obj: PaymentIntegration | None) -> str:
    """Why credentials cannot be stored now, or ``obj``'s cannot be opened; "" if fine."""
    try:
        credentials.seal({})
        if obj is not None:
            credentials.unseal(obj.secret_sealed)
    except credentials.CredentialsLocked as exc:
        if obj is not None and "cannot be opened" in exc.message:
            return f"{exc.message} Enter every secret field again to store them anew."
        return exc.message
    return ""


@admin.register(PaymentIntegration)
class PaymentIntegrationAdmin(CreatorBidScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "integration_bid",
        "channel",
        "creator_bid",
        "name",
        "active",
        "account",
        "updated_at",
    )
    list_filter = ("channel", "active")
    search_fields = ("=creator_bid", "name", "=integration_bid")
    search_help_text = "An exact creator id or integration id, or part of the name."
    ordering = ("-id",)
    readonly_fields = ("integration_bid", "notify_url_display", "created_at", "updated_at")
    actions = ("deactivate",)

    # ---- the channel step ----

    def _channel(self, request, obj: PaymentIntegration | None) -> str:
        if obj is not None:
            return obj.channel
        return request.GET.get("channel", "")

    def add_view(self, request, form_url="", extra_context=None):
        if request.GET.get("channel", "") not in merchant_channels():
            return self.channel_choice_view(request)
        return super().add_view(request, form_url, extra_context)

    def channel_choice_view(self, request):
        choices = [
            (channel, f"{request.path}?{urlencode({'channel': channel})}")
            for channel in merchant_channels()
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add a creator's merchant account: its channel",
            "choices": choices,
        }
        return TemplateResponse(
            request, "admin/payments/paymentintegration/choose_channel.html", context
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "GET":
            obj = self.get_object(request, unquote(object_id)) if object_id else None
            problem = credentials_problem(obj)
            if problem:
                messages.warning(request, problem)
        return super().changeform_view(request, object_id, form_url, extra_context)

    # ---- the form ----

    def get_fieldsets(self, request, obj=None):
        channel = self._channel(request, obj)
        fields = merchant_fields(channel)
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ("channel", "creator_bid", "name", "active")})
        ]
        if fields.public:
            fieldsets.append(
                (
                    f"{channel}: account",
                    {"fields": [field_key(channel, name) for name in fields.public]},
                )
            )
        if fields.secret:
            fieldsets.append(
                (
                    f"{channel}: keys",
                    {
                        "fields": [field_key(channel, name) for name in fields.secret],
                        "description": (
                            "Stored encrypted (PAYMENT_CREDENTIALS_KEYS) and never shown "
                            "back: a field left blank keeps what is stored."
                        ),
                    },
                )
            )
        if obj is not None:
            fieldsets.append(("Record", {"fields": self.readonly_fields}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        channel = self._channel(request, obj)
        kwargs["form"] = integration_form(channel, obj, creator_scope(request.user))
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        integration_save(
            channel=form.merchant_channel,
            creator_bid=obj.creator_bid,
            name=obj.name,
            active=obj.active,
            public=form.merchant_public,
            secret=form.merchant_secret,
            integration=obj,
        )

    # ---- never deleted ----

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(permissions=["change"], description="Deactivate (stop taking new orders)")
    def deactivate(self, request, queryset) -> None:
        count = 0
        for obj in queryset.filter(active=True):
            obj.active = False
            obj.save(update_fields=["active", "updated_at"])
            self.log_change(request, obj, "Deactivated.")
            count += 1
        self.message_user(request, f"{count} account(s) deactivated.", messages.SUCCESS)

    # ---- values ----

    @admin.display(description="app id / mch id")
    def account(self, obj: PaymentIntegration) -> str:
        public = obj.public_config or {}
        shown = [f"{name} {public[name]}" for name in ACCOUNT_IDS if public.get(name)]
        return " · ".join(shown) or EMPTY

    @admin.display(description="notification URL (set it at the provider)")
    def notify_url_display(self, obj: PaymentIntegration) -> str:
        return notify_url(obj.channel, obj.integration_bid)
