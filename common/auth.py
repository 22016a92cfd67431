"""The logged-in user, loaded from the cache: a page view needs no query for it.

``get_user`` is what ``AuthenticationMiddleware`` calls on every request with a session. The
user row is cached by id; any change of a user (password change, e-mail verification, last
login, admin edit, deactivation) drops the entry through ``user_cache_invalidate``, so the
session hash check in ``django.contrib.auth`` always sees the current password and a student
verified a minute before the opening can claim at once. ``save()`` and ``delete()`` call it
through signals; a queryset ``update()`` bypasses them, so the service doing one must call it.
When Redis is unavailable the row comes from PostgreSQL.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .cache import cache_delete, cache_get_or_compute, count_read, fresh_entry
from .sessions import take_prefetched_user

_MISSING_USER = "missing"  # cached marker: no such (active) user; avoids a query per request


def user_cache_key(user_id: object) -> str:
    return f"user:{user_id}"


class CachedUserMixin:
    """``get_user`` from the cache, for an authentication backend (accounts.backends puts it on
    the project's own: this module knows no app)."""

    def get_user(self, user_id):
        # Read along with the session in the same round trip (common/sessions.py).
        entry = take_prefetched_user(user_id)
        if entry is not None and fresh_entry(entry):
            count_read("user", hit=True)
            return None if entry[0] == _MISSING_USER else entry[0]

        def load():
            user = super(CachedUserMixin, self).get_user(user_id)
            return _MISSING_USER if user is None else user

        user = cache_get_or_compute(
            "user",
            user_cache_key(user_id),
            load,
            ttl=settings.CACHE_TTL_USER,
            stale_ttl=settings.CACHE_TTL_USER,
            serve_stale=False,  # a deactivated or re-passworded user must never be served stale
        )
        return None if user == _MISSING_USER else user


def user_cache_invalidate(*user_ids: object) -> None:
    """Drop the cached rows of these users: the one place that does it, for every change.

    Drops them now and again once the current transaction commits: a request that loads the
    user between the change and the commit reads the old row and caches it; without the second
    drop that old row would be served for CACHE_TTL_USER.
    """
    keys = [user_cache_key(user_id) for user_id in user_ids]
    if not keys:
        return
    cache_delete("user", *keys)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: cache_delete("user", *keys))


def _drop_cached_user(sender, instance, **kwargs) -> None:
    user_cache_invalidate(instance.pk)


def connect_signals() -> None:
    """Drop the cached row whenever a user is saved or deleted (called from AppConfig.ready)."""
    model = get_user_model()
    post_save.connect(_drop_cached_user, sender=model, dispatch_uid="common.auth.user_saved")
    post_delete.connect(_drop_cached_user, sender=model, dispatch_uid="common.auth.user_deleted")
