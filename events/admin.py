"""Organisers manage events here. Every write goes through events.services.

The pages of the apps above events are linked by their admin URL names, never imported: the
draw's public random value (queueing), the attendee list and the confirmation requests (tickets).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.errors import DomainError
from common.timefmt import short_local

from . import selectors, services
from .forms import EventAdminForm
from .models import Event


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
            reverse("queueing:draw-beacon", args=[obj.pk]),
            _("Enter the public random value"),
        )

    def changelist_view(self, request, extra_context=None):
        # On the day: a frozen draw whose public value is due but not entered holds its pre-queue.
        for event in selectors.draws_awaiting_beacon(now=timezone.now()):
            self.message_user(
                request,
                format_html(
                    '{} <a href="{}">{}</a>',
                    _("The draw of %(title)s waits for its public random value (due %(when)s).")
                    % {"title": event.title, "when": short_local(event.draw_beacon_due_at)},
                    reverse("queueing:draw-beacon", args=[event.pk]),
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
        # The deadline is chosen on the confirmation request's form (tickets admin).
        event = queryset.first()
        url = reverse("admin:tickets_confirmationrequest_add")
        return redirect(f"{url}?event={event.pk}" if event is not None else url)

    @admin.action(description=_("Export attendee list (CSV)"))
    def export_attendees_csv(self, request, queryset):
        # The list is the tickets' (tickets admin): the browser downloads it from there.
        events = urlencode([("event", pk) for pk in queryset.values_list("pk", flat=True)])
        return redirect(f"{reverse('admin:tickets_ticket_attendees')}?{events}")
