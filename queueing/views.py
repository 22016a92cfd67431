"""The organiser's step of a shuffled opening's draw, in the admin: entering the public random
value. Thin: ``queueing.draw.draw_enter_beacon`` decides. Served under the event's admin page
(queueing/urls.py, before the admin's own URLs), for anyone who may change events."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from common.errors import DomainError
from events.models import Event

from .draw import draw_enter_beacon
from .forms import DrawBeaconForm


def draw_beacon(request, event_id: int):
    """The organiser enters the draw's public random value, once, after the freeze."""
    if not request.user.has_perm("events.change_event"):
        raise PermissionDenied
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        raise Http404(_("This event does not exist."))
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
            messages.success(request, _("Public random value recorded: the draw is made within seconds."))
            return redirect("admin:events_event_change", event.pk)
    context = {
        **admin.site.each_context(request),
        "title": _("Enter the public random value"),
        "opts": Event._meta,
        "event": event,
        "form": form,
    }
    return render(request, "admin/events/event/draw_beacon.html", context)
