"""Organisers see the waiting list, the offers and the attendance confirmations."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .confirmations import confirmation_request_create
from .models import ConfirmationRequest, TicketConfirmation, WaitlistEntry


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(admin.ModelAdmin):
    list_display = ("event", "user", "status", "created_at", "offered_at", "offer_expires_at", "ticket")
    list_filter = ("event", "status")
    search_fields = ("user__nim", "user__email", "user__full_name")
    ordering = ("event", "id")
    list_select_related = ("event", "user", "ticket")

    # Seats are held and passed by services only (docs/OPERATIONS.md): the list is read-only here.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TicketConfirmationInline(admin.TabularInline):
    model = TicketConfirmation
    fields = ("ticket", "confirmed_at")
    readonly_fields = ("ticket", "confirmed_at")
    extra = 0
    can_delete = False


class ConfirmationRequestForm(forms.ModelForm):
    class Meta:
        model = ConfirmationRequest
        fields = ("event", "deadline")

    def clean(self):
        data = super().clean()
        event, deadline = data.get("event"), data.get("deadline")
        if event is not None and deadline is not None and not (timezone.now() < deadline < event.starts_at):
            raise forms.ValidationError(_("The deadline must be in the future and before the event starts."))
        return data


@admin.register(ConfirmationRequest)
class ConfirmationRequestAdmin(admin.ModelAdmin):
    """ "Ask ticket holders to confirm": choose the event and a deadline; released at the deadline."""

    list_display = ("event", "deadline", "created_at", "confirmed", "unconfirmed", "closed_at", "released")
    list_filter = ("event",)
    form = ConfirmationRequestForm
    fields = ("event", "deadline")
    inlines = [TicketConfirmationInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("event")
            .annotate(
                n_confirmed=Count("confirmations", filter=Q(confirmations__confirmed_at__isnull=False)),
                n_unconfirmed=Count("confirmations", filter=Q(confirmations__confirmed_at__isnull=True)),
            )
        )

    @admin.display(description=_("confirmed"))
    def confirmed(self, obj) -> int:
        return obj.n_confirmed

    @admin.display(description=_("not yet confirmed"))
    def unconfirmed(self, obj) -> int:
        return obj.n_unconfirmed

    def get_readonly_fields(self, request, obj=None):
        return ("event", "deadline") if obj is not None else ()

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if request.GET.get("event"):
            initial["event"] = request.GET["event"]
        return initial

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        created = confirmation_request_create(event_id=obj.event_id, deadline=obj.deadline, created_by=request.user)
        obj.pk = created.pk
        obj.created_at = created.created_at
        obj._state.adding = False
