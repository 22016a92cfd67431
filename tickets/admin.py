"""Tickets in the Django admin: find, inspect, never forge.

Codes, holder and seat are read-only: a ticket is created only by ``ticket_issue`` (so the
seat counter stays right), returned only by ``ticket_return`` and admitted only by
``ticket_check_in``; the admin cannot add tickets or edit those fields.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.timefmt import short_local

from .codes import qr_payload_for
from .models import Ticket, TicketMail
from .selectors import format_redeem_code


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
