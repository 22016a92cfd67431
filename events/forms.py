"""The organiser's event form (Django admin): friendly errors before the constraints bite."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Event
from .selectors import has_prequeue
from .services import ORGANISER_FIELDS


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
        capacity = data.get("capacity")
        if self.instance.pk and capacity is not None:
            issued = self.instance.capacity - Event.objects.values_list("remaining", flat=True).get(pk=self.instance.pk)
            if capacity < issued:
                self.add_error(
                    "capacity",
                    _("The capacity cannot be lower than the %(issued)d tickets already issued.") % {"issued": issued},
                )
        return data
