"""Tickets in the Django admin: find, inspect, never forge; the attendee list; confirmations.

Codes, holder and seat are read-only: a ticket is created only by ``ticket_issue_many`` or
``ticket_issue_held`` (so the seat counter stays right), returned only by ``ticket_return`` and
admitted only by ``ticket_check_in``; the admin cannot add tickets or edit those fields.
"""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.spreadsheet import csv_safe
from common.timefmt import short_local

from .codes import qr_payload_for
from .confirmations import confirmation_request_create
from .models import ConfirmationRequest, Ticket, TicketConfirmation, TicketMail
from .selectors import format_redeem_code

ATTENDEE_COLUMNS = ["event", "nim", "full_name", "email", "redeem_code", "issued_at", "admitted_at", "admitted_by"]


def _csv_cell(value) -> str:
    if value is None:
        return ""
    return csv_safe(timezone.localtime(value).isoformat() if hasattr(value, "tzinfo") else str(value))


class AdmittedFilter(admin.SimpleListFilter):
    title = _("admitted")
    parameter_name = "admitted"

    def lookups(self, request, model_admin):
        return [("yes", _("admitted")), ("no", _("not admitted"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(admitted_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(admitted_at__isnull=True)
        return queryset


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    # Short times with their zone (WIB): the list fits a 1366-pixel laptop without scrolling sideways.
    list_display = ["redeem_display", "event", "holder", "holder_nim", "status", "issued", "admitted"]
    list_filter = ["event", "status", AdmittedFilter]
    list_select_related = ["event", "user"]
    search_fields = ["redeem_code", "user__nim", "user__full_name", "user__email"]
    date_hierarchy = "issued_at"
    ordering = ["-issued_at"]
    readonly_fields = [
        "id",
        "event",
        "user",
        "redeem_code",
        "qr_payload",
        "status",
        "issued_at",
        "returned_at",
        "admitted_at",
        "admitted_by",
        "ticket_page",
        "ticket_mail",
    ]
    fields = readonly_fields

    @admin.display(description=_("redeem code"), ordering="redeem_code")
    def redeem_display(self, ticket: Ticket) -> str:
        return format_redeem_code(ticket.redeem_code)

    @admin.display(description=_("issued at"), ordering="issued_at")
    def issued(self, ticket: Ticket) -> str:
        return short_local(ticket.issued_at)

    @admin.display(description=_("admitted at"), ordering="admitted_at")
    def admitted(self, ticket: Ticket) -> str:
        return short_local(ticket.admitted_at)

    @admin.display(description=_("holder"), ordering="user__full_name")
    def holder(self, ticket: Ticket) -> str:
        return ticket.user.full_name or ticket.user.get_username()

    @admin.display(description=_("NIM"), ordering="user__nim")
    def holder_nim(self, ticket: Ticket) -> str:
        return ticket.user.nim or "—"

    @admin.display(description=_("QR payload"))
    def qr_payload(self, ticket: Ticket) -> str:
        return qr_payload_for(ticket.id)

    @admin.display(description=_("ticket page"))
    def ticket_page(self, ticket: Ticket) -> str:
        return format_html("<code>/tickets/{}/</code> ({})", ticket.id, _("visible to its holder only"))

    @admin.display(description=_("ticket e-mail"))
    def ticket_mail(self, ticket: Ticket) -> str:
        """For "I got no mail": sent when, or how many tries so far (tickets.delivery)."""
        row = TicketMail.objects.filter(ticket=ticket).first()
        if row is None:
            return _("not sent yet")
        if row.sent_at is not None:
            return _("sent %(when)s") % {"when": short_local(row.sent_at)}
        return _("not sent yet (%(tries)s tries, next %(when)s)") % {
            "tries": row.attempts,
            "when": short_local(row.next_try_at),
        }

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a ticket would leave its seat counted as taken; give it back instead.
        return False

    def get_urls(self):
        view = self.admin_site.admin_view(self.attendees_view)
        return [path("attendees/", view, name="tickets_ticket_attendees"), *super().get_urls()]

    def attendees_view(self, request):
        """``?event=<id>&event=<id>``: the active tickets of these events as a CSV file (the event
        admin's action "Export attendee list" leads here)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        event_ids = [value for value in request.GET.getlist("event") if value.isdigit()]
        tickets = (
            Ticket.objects.filter(event_id__in=event_ids, status=Ticket.Status.ACTIVE)
            .select_related("event", "user", "admitted_by")
            .order_by("event__starts_at", "event_id", "user__nim")
        )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="attendees-{stamp}.csv"'
        writer = csv.writer(response)
        writer.writerow(ATTENDEE_COLUMNS)
        for ticket in tickets.iterator(chunk_size=1000):
            admitted_by = ticket.admitted_by.get_username() if ticket.admitted_by else None
            row = (
                ticket.event.slug,
                ticket.user.nim,
                ticket.user.full_name,
                ticket.user.email,
                ticket.redeem_code,
                ticket.issued_at,
                ticket.admitted_at,
                admitted_by,
            )
            writer.writerow([_csv_cell(value) for value in row])
        return response


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
