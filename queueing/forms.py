"""The organiser's form for the draw's public random value (Django admin)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .draw import BEACON_MAX_LENGTH, clean_beacon
from .exceptions import DrawError


class DrawBeaconForm(forms.Form):
    value = forms.CharField(
        label=_("Public random value"),
        max_length=BEACON_MAX_LENGTH,
        widget=forms.TextInput(attrs={"size": 70, "autocomplete": "off", "spellcheck": "false"}),
        help_text=_("Copy it exactly as the source publishes it (for drand: the randomness field)."),
    )
    # Asked only for an event that named no source before its pre-queue was frozen.
    source = forms.CharField(label=_("Where it was published"), max_length=300, required=False)

    def __init__(self, *args, needs_source: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if needs_source:
            self.fields["source"].required = True
            self.fields["source"].help_text = _(
                "No source was named before the freeze: the published draw will show that it was named late."
            )
        else:
            del self.fields["source"]

    def clean_value(self) -> str:
        try:
            return clean_beacon(self.cleaned_data["value"])
        except DrawError as refusal:
            raise forms.ValidationError(refusal.message) from None
