"""Sessions in PostgreSQL, cached in Redis, read together with their user in one round trip.

``SESSION_ENGINE = "common.sessions"``: Django's ``cached_db`` store (PostgreSQL is the
truth, Redis the copy; a dead Redis logs nobody out) plus one small key per logged-in session,
``sessuid:<session key>`` holding the user's id. Reading a session is then one Redis script
that returns the session, that id and the user's cache entry (``user:<id>``,
common/auth.py) together: one round trip where a logged-in request used to make two.

Nothing about revocation changes. The user entry is the same key the auth backend reads and
every save of a user drops; the backend serves it only if it is fresh, exactly as it would
after its own read. Logging out deletes the session and its ``sessuid`` key everywhere; a
password change or a deactivation drops ``user:<id>``, so the next request of every process
loads the row from PostgreSQL and the session hash check refuses the old session.
"""

from __future__ import annotations

import logging
import threading
import time

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore

from .redis import get_client, redis_available

logger = logging.getLogger("ticketwar.sessions")

# One round trip: the session, the id of its user, and that user's cache entry.
_LOAD_SCRIPT = """
local data = redis.call('GET', KEYS[1])
local uid = redis.call('GET', KEYS[2])
local user = false
if uid then user = redis.call('GET', ARGV[1] .. uid) end
return {data, uid, user}
"""
_script = None
_script_lock = threading.Lock()

# The user entry read with the session, for the auth backend's get_user() in the same thread.
_prefetched = threading.local()
_PREFETCH_MAX_AGE = 1.0  # seconds: only for the request that read it


def _load_script():
    global _script
    with _script_lock:
        if _script is None:
            _script = get_client().register_script(_LOAD_SCRIPT)
        return _script


def take_prefetched_user(user_id: object) -> tuple | None:
    """The cache entry of ``user_id`` read along with this thread's session, once; else None."""
    held = getattr(_prefetched, "entry", None)
    _prefetched.entry = None
    if held is None:
        return None
    uid, entry, read_at = held
    if str(uid) != str(user_id) or time.monotonic() - read_at > _PREFETCH_MAX_AGE:
        return None
    return entry


class SessionStore(CachedDBStore):
    @property
    def uid_cache_key(self) -> str:
        return f"sessuid:{self._get_or_create_session_key()}"

    def load(self):
        _prefetched.entry = None
        if not self.session_key or not redis_available():
            return self._load_and_remember()
        cache = self._cache
        try:
            data_raw, uid_raw, user_raw = _load_script()(
                keys=[cache.make_key(self.cache_key), cache.make_key(self.uid_cache_key)],
                args=[cache.make_key("user:")],
            )
        except Exception:  # unreachable or refused: Django's own path (and its fallbacks)
            return super().load()
        if data_raw is None:  # not cached: from PostgreSQL, as cached_db does
            return self._load_and_remember()
        data = cache.client.decode(data_raw)
        if not isinstance(data, dict):
            return self._load_and_remember()
        if uid_raw is None:
            self._remember_user(data)  # a session stored before this engine, or its key expired
        elif user_raw is not None:
            _prefetched.entry = (uid_raw.decode(), cache.client.decode(user_raw), time.monotonic())
        return data

    def _load_and_remember(self):
        data = super().load()
        if self.session_key:
            self._remember_user(data)
        return data

    def _remember_user(self, data: dict) -> None:
        user_id = data.get(SESSION_KEY)
        try:
            if user_id is None:
                self._cache.delete(self.uid_cache_key)
            else:
                # The expiry from ``data``: this runs inside load(), before self._session exists
                # (self.get_expiry_age() alone would call load() again).
                age = self.get_expiry_age(expiry=data.get("_session_expiry"))
                self._cache.set(self.uid_cache_key, int(user_id), age)
        except (TypeError, ValueError):
            logger.warning("session holds a user id that is not a number")
        except Exception:  # Redis unreachable: the next read takes the longer path
            logger.debug("could not store the session's user id")

    def save(self, must_create: bool = False) -> None:
        super().save(must_create)
        self._remember_user(self._session)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        super().delete(session_key)
        if key:
            try:
                self._cache.delete(f"sessuid:{key}")
            except Exception:  # the session row and its cached copy are gone: nothing to log in with
                logger.debug("could not delete the session's user id")
