"""Template context of the tickets app on every page."""

from __future__ import annotations

from django.utils.functional import lazy

from .selectors import door_account, pocket_account


def pocket(request) -> dict:
    """``pocket_account``: whose saved ticket pages this phone may keep (base.html hands it to
    static/js/pocket.js on ``<body>``). Computed only when a template prints it."""
    return {"pocket_account": lazy(pocket_account, str)(getattr(request, "user", None))}


def door(request) -> dict:
    """``door_account``: whose door lists this phone may keep (static/js/door_forget.js reads it
    from ``<body>``). Computed only when a template prints it."""
    return {"door_account": lazy(door_account, str)(getattr(request, "user", None))}
