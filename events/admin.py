"""Organisers manage events here. Every write goes through events.services."""

from __future__ import annotations

import csv

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.errors import DomainError
from common.spreadsheet import csv_safe
from common.timefmt import short_local
from queueing.draw import draw_enter_beacon
from queueing.forms import DrawBeaconForm
from tickets.models import Ticket

from . import selectors, services
from .forms import EventAdminForm
from .models import Event


def _csv_cell(value) -> str:
    if value is None:
        return ""
    return csv_safe(timezone.localtime(value).isoformat() if hasattr(value, "tzinfo") else str(value))


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    form = EventAdminForm
    # Short times with their zone, no slug column (it is in the page's address): the list fits
    # a 1366-pixel laptop without scrolling sideways.
    list_display = (
        "title",
        "status",
        "starts",
        "claim_opens",
        "capacity",
        "issued",
        "remaining",
        "admitted",
    )
    list_filter = ("status",)
    search_fields = ("title", "slug", "speaker")
    readonly_fields = ("remaining", "draw", "created_at", "updated_at")
    prepopulated_fields = {"slug": ("title",)}
    actions = ("publish_events", "cancel_events", "export_attendees_csv", "ask_ticket_holders_to_confirm")

    def get_queryset(self, request):
        return selectors.event_list_with_counts()

    @admin.display(description=_("starts at"), ordering="starts_at")
    def starts(self, obj: Event) -> str:
        return short_local(obj.starts_at)

    @admin.display(description=_("claim opens at"), ordering="claim_opens_at")
    def claim_opens(self, obj: Event) -> str:
        return short_local(obj.claim_opens_at)

    @admin.display(description=_("issued"), ordering="issued_count")
    def issued(self, obj: Event) -> int:
        return obj.issued_count

    @admin.display(description=_("draw"))
    def draw(self, obj: Event) -> str:
        # The seed itself stays hidden until the draw, even from staff: the commitment is public.
        if obj.pk is None or not obj.is_shuffled:
            return "–"
        if obj.draw_revealed_at is not None:
            return _("drawn %(when)s, %(n)s pre-queue entries, seed %(seed)s") % {
                "when": short_local(obj.draw_revealed_at),
                "n": len(obj.draw_entries),
                "seed": obj.draw_seed,
            }
        if obj.draw_frozen_at is None:
            return _("commitment %(c)s; the pre-queue is frozen when the claim window opens") % {
                "c": obj.draw_commitment
            }
        if obj.draw_beacon:
            return _("public random value entered %(when)s; the draw follows within seconds") % {
                "when": short_local(obj.draw_beacon_entered_at)
            }
        return format_html(
            '{} <a class="button" id="draw-beacon-link" href="{}">{}</a>',
            _("frozen %(when)s with %(n)s entries; waiting for the public random value")
            % {"when": short_local(obj.draw_frozen_at), "n": len(obj.draw_entries)},
            reverse("admin:events_event_draw_beacon", args=[obj.pk]),
            _("Enter the public random value"),
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.draw_beacon_view)
        return [path("<path:object_id>/draw-value/", view, name="events_event_draw_beacon"), *super().get_urls()]

    def draw_beacon_view(self, request, object_id: str):
        """The organiser enters the draw's public random value, once, after the freeze."""
        event = self.get_object(request, object_id)
        if event is None:
            raise Http404(_("This event does not exist."))
        if not self.has_change_permission(request, event):
            raise PermissionDenied
        form = DrawBeaconForm(request.POST or None, needs_source=not event.draw_beacon_source)
        if request.method == "POST" and form.is_valid():
            try:
                draw_enter_beacon(
                    event_id=event.pk,
                    value=form.cleaned_data["value"],
                    user_id=request.user.pk,
                    source=form.cleaned_data.get("source", ""),
                )
            except DomainError as refusal:
                form.add_error(None, refusal.message)
            else:
                self.message_user(
                    request, _("Public random value recorded: the draw is made within seconds."), messages.SUCCESS
                )
                return redirect("admin:events_event_change", event.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Enter the public random value"),
            "opts": self.model._meta,
            "event": event,
            "form": form,
        }
        return render(request, "admin/events/event/draw_beacon.html", context)

    def changelist_view(self, request, extra_context=None):
        # On the day: a frozen draw whose public value is due but not entered holds its pre-queue.
        for event in selectors.draws_awaiting_beacon(now=timezone.now()):
            self.message_user(
                request,
                format_html(
                    '{} <a href="{}">{}</a>',
                    _("The draw of %(title)s waits for its public random value (due %(when)s).")
                    % {"title": event.title, "when": short_local(event.draw_beacon_due_at)},
                    reverse("admin:events_event_draw_beacon", args=[event.pk]),
                    _("Enter the public random value"),
                ),
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("admitted"), ordering="admitted_count")
    def admitted(self, obj: Event) -> int:
        return obj.admitted_count

    def save_model(self, request, obj: Event, form, change):
        data = {name: form.cleaned_data[name] for name in form.Meta.fields if name in form.cleaned_data}
        try:
            if change:
                status = data.pop("status")
                capacity = data.pop("capacity")
                services.event_update(event_id=obj.pk, capacity=capacity, **data)
                if status != Event.objects.values_list("status", flat=True).get(pk=obj.pk):
                    services.event_set_status(event_id=obj.pk, status=status)
            else:
                created = services.event_create(**data)
                obj.pk = created.pk
            obj.refresh_from_db()
        except DomainError as exc:
            # Only reachable when a ticket was issued between the form check and the save.
            self.message_user(request, exc.message, level=messages.ERROR)

    @admin.action(description=_("Publish selected events"))
    def publish_events(self, request, queryset):
        for event_id in queryset.values_list("pk", flat=True):
            services.event_publish(event_id=event_id)
        self.message_user(request, _("Events published."), level=messages.SUCCESS)

    @admin.action(description=_("Cancel selected events"))
    def cancel_events(self, request, queryset):
        for event_id in queryset.values_list("pk", flat=True):
            services.event_cancel(event_id=event_id)
        self.message_user(request, _("Events cancelled."), level=messages.SUCCESS)

    @admin.action(description=_("Ask ticket holders to confirm attendance"))
    def ask_ticket_holders_to_confirm(self, request, queryset):
        # The deadline is chosen on the confirmation request's form (waitlist admin).
        event = queryset.first()
        url = reverse("admin:waitlist_confirmationrequest_add")
        return redirect(f"{url}?event={event.pk}" if event is not None else url)

    @admin.action(description=_("Export attendee list (CSV)"))
    def export_attendees_csv(self, request, queryset):
        tickets = (
            Ticket.objects.filter(event__in=queryset.values("pk"), status=Ticket.Status.ACTIVE)
            .select_related("event", "user", "admitted_by")
            .order_by("event__starts_at", "event_id", "user__nim")
        )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="attendees-{stamp}.csv"'
        writer = csv.writer(response)
        writer.writerow(
            ["event", "nim", "full_name", "email", "redeem_code", "issued_at", "admitted_at", "admitted_by"]
        )
        for ticket in tickets.iterator(chunk_size=1000):
            admitted_by = ticket.admitted_by.get_username() if ticket.admitted_by else None
            writer.writerow(
                [
                    _csv_cell(value)
                    for value in (
                        ticket.event.slug,
                        ticket.user.nim,
                        ticket.user.full_name,
                        ticket.user.email,
                        ticket.redeem_code,
                        ticket.issued_at,
                        ticket.admitted_at,
                        admitted_by,
                    )
                ]
            )
        return response
