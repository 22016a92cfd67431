"""Template context of the tickets app on every page."""

from __future__ import annotations

from django.utils.functional import lazy

from .selectors import pocket_account


def pocket(request) -> dict:
    """``pocket_account``: whose saved ticket pages this phone may keep (base.html hands it to
    static/js/pocket.js on ``<body>``). Computed only when a template prints it."""
    return {"pocket_account": lazy(pocket_account, str)(getattr(request, "user", None))}
