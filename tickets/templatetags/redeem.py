"""``{{ code|redeem_code }}``: a redeem code shown the one way it is shown everywhere."""

from __future__ import annotations

from django import template

from tickets.selectors import format_redeem_code

register = template.Library()


@register.filter
def redeem_code(code: str | None) -> str:
    return format_redeem_code(code) if code else ""
