"""The platform bridge in the support console: platform users, partner keys, event
endpoints, and every outbound event with its deliveries, attempts and answers."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages

from bridge import outbox
from bridge.models import (
    ApiKey,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    OutboundEvent,
    PlatformUser,
    Scope,
)
from bridge.partners import api_key_create, api_key_revoke
from payments_project.admin_utils import LargeTableAdminMixin, ReadOnlyAdminMixin, pretty_json
from payments_project.errors import ServiceError


@admin.register(PlatformUser)
class PlatformUserAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user_bid", "user", "created_at"]
    search_fields = ["=user_bid", "user__username", "user__email"]
    list_select_related = ["user"]


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    actions = ["revoke"]
    form = ApiKeyForm

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]

    def get_fields(self, request, obj=None):
        return ["name", "scopes"] if obj is None else self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, never deleted: the history says which key acted

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            row, key = api_key_create(name=obj.name, scopes=form.cleaned_data["scopes"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc
        obj.pk = row.pk
        self.message_user(
            request,
            f"The key of {row.name!r}, shown this once (only its digest is kept): {key}",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        live = list(queryset.filter(revoked_at__isnull=True))
        for key in live:
            api_key_revoke(name=key.name)
        self.message_user(request, f"{len(live)} key(s) revoked.")


class EndpointForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The HMAC secret receivers check X-Signature with. Left blank on a "
        "change: kept as it is.",
    )

    class Meta:
        model = Endpoint
        fields = ["name", "url", "secret", "active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not outbox.url_allowed(url):
            raise forms.ValidationError("An https:// URL (http:// only to a loopback host).")
        return url

    def clean_secret(self):
        secret = self.cleaned_data["secret"]
        if not secret and self.instance.pk:
            return self.instance.secret
        if len(secret) < 16:
            raise forms.ValidationError("At least 16 characters.")
        return secret


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "url", "active", "from_settings", "created_at"]
    form = EndpointForm

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.from_settings:
            return False  # PLATFORM_WEBHOOK_URL's: its URL and secret are the environment's
        return super().has_change_permission(request, obj)


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ["created_at", "status", "duration_ms", "answer"]
    readonly_fields = fields
    extra = 0
    ordering = ["-id"]


@admin.register(Delivery)
class DeliveryAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "event_id",
        "endpoint",
        "subject",
        "state",
        "attempts",
        "last_status",
        "next_at",
        "delivered_at",
    ]
    list_filter = ["state", "endpoint", "event__type"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["=event__event_id", "=subject"]
    readonly_fields = [
        "event",
        "endpoint",
        "subject",
        "state",
        "attempts",
        "next_at",
        "window_from",
        "last_status",
        "last_error",
        "delivered_at",
        "created_at",
        "body",
    ]
    fields = readonly_fields
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.display(description="type", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description="event id")
    def event_id(self, delivery):
        return delivery.event.event_id

    @admin.display(description="body sent")
    def body(self, delivery):
        return pretty_json(json.loads(delivery.event.body))

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("bridge.change_delivery")

    @admin.action(description="Deliver the selected again now", permissions=["change"])
    def redeliver(self, request, queryset):
        count = outbox.deliveries_redeliver(queryset)
        self.message_user(
            request,
            f"{count} delivery(ies) due now, with a new retry window; a worker (or "
            "manage.py deliver_events) sends them. Pending ones are left to their retries.",
        )


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Delivery
    fields = ["endpoint", "state", "attempts", "last_status", "next_at", "delivered_at"]
    readonly_fields = fields
    extra = 0


@admin.register(OutboundEvent)
class OutboundEventAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event_id", "type", "subject", "created_at"]
    list_filter = ["type"]
    search_fields = ["=event_id", "=subject"]
    fields = ["event_id", "type", "subject", "created_at", "payload"]
    readonly_fields = fields
    inlines = [DeliveryInline]

    @admin.display(description="body")
    def payload(self, event):
        return pretty_json(json.loads(event.body))
