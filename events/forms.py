"""The organiser's event form (Django admin): friendly errors before the constraints bite."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Event
from .selectors import has_prequeue
from .services import DRAW_FIELDS, ORGANISER_FIELDS


class EventAdminForm(forms.ModelForm):
    class Meta:
        model = Event
        fields = list(ORGANISER_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Optional on the form: an event saved without it keeps first come, first served.
        self.fields["opening_mode"].required = False

    def clean(self):
        data = super().clean()
        if not data.get("opening_mode"):
            data["opening_mode"] = self.instance.opening_mode or Event.OpeningMode.FIFO
        opens, closes, starts = data.get("claim_opens_at"), data.get("claim_closes_at"), data.get("starts_at")
        if opens and closes and opens >= closes:
            self.add_error("claim_closes_at", _("The claim window must open before it closes."))
        if closes and starts and closes > starts:
            self.add_error("claim_closes_at", _("The claim window must close no later than the event starts."))
        changed_mode = self.instance.pk and data["opening_mode"] != self.instance.opening_mode
        if changed_mode and has_prequeue(self.instance.pk):
            self.add_error(
                "opening_mode",
                _(
                    "The opening mode cannot change any more: students already wait in the pre-queue, "
                    "and their claims would never be drawn nor decided."
                ),
            )
        self._clean_draw(data)
        capacity = data.get("capacity")
        if self.instance.pk and capacity is not None:
            issued = self.instance.capacity - Event.objects.values_list("remaining", flat=True).get(pk=self.instance.pk)
            if capacity < issued:
                self.add_error(
                    "capacity",
                    _("The capacity cannot be lower than the %(issued)d tickets already issued.") % {"issued": issued},
                )
        return data

    def _clean_draw(self, data: dict) -> None:
        """A shuffled opening names its public random value before opening; the freeze fixes it."""
        frozen = self.instance.pk and self.instance.draw_frozen_at is not None
        if frozen:
            for name in DRAW_FIELDS:
                if name in data and data[name] != getattr(self.instance, name):
                    self.add_error(
                        name,
                        _("The pre-queue is frozen: this can no longer change (everyone saw it before the draw)."),
                    )
            return
        if data.get("opening_mode") != Event.OpeningMode.SHUFFLE_AT_OPEN:
            return
        if not (data.get("draw_beacon_source") or "").strip():
            self.add_error(
                "draw_beacon_source",
                _("A shuffled opening needs the source of its public random value, named before opening."),
            )
        due, opens = data.get("draw_beacon_due_at"), data.get("claim_opens_at")
        if due is None:
            self.add_error("draw_beacon_due_at", _("Say when that value is published."))
        elif opens and due <= opens:
            self.add_error(
                "draw_beacon_due_at",
                _("The value must be published after the claim window opens: a value known before would let "
                  "whoever knows the seed choose the order."),
            )  # fmt: skip
