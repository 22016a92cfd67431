"""Who is logged in: Django's signed-cookie sessions, the user kept in process memory, and a
revocation feed in PostgreSQL that every process reads four times a second.

A session lives in its cookie (``django.contrib.sessions.backends.signed_cookies``): reading it
needs no store. What a cookie cannot do by itself is stop working, so every change that must end
or alter a login is written, in the transaction that makes it, to the feed (``Revocation``):

- a session ended (logout, a new login in the same browser): its random id, ``_sid``, which
  ``login`` puts in every session;
- a user changed (password, ``is_active``, staff or superuser flags, verification, groups,
  permissions, deletion): the process copies of that user are dropped. Django's own session
  check then refuses a session whose password hash is no longer the user's, and an inactive or
  deleted user is nobody. A creation or a ``last_login``-only save changes nothing a copy holds.

Entries are numbered in commit order without gaps (``RevocationCounter``). Each process runs one
watcher thread that reads the entries after the last one it has applied every ``POLL_SECONDS``
and notes when its last successful read *started*. A request is served from memory (the user
from the process's copy, the session id looked up in the set of ended sessions) only while that
read started less than ``IN_SYNC_SECONDS`` ago: every entry committed before then has been
applied. Otherwise (just started, the watcher failing or slow, PostgreSQL away) the process is
in doubt and asks PostgreSQL for the user and the session on every request (fail closed: while
PostgreSQL is away, logged-in requests are answered 503). So an entry committed at time r is in
force on every process by r + ``IN_SYNC_SECONDS``. Redis plays no part: a revocation made while
Redis is dead or hung is in force at once, and stays in force when it returns.

Why polling PostgreSQL rather than Redis pub/sub: docs/OPERATIONS.md, "Sessions and revocation".
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from channels.auth import AuthMiddleware
from channels.auth import get_user as channels_get_user
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.db import close_old_connections, connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from common.background import ProcessThread
from common.cache import count_read

from .models import Revocation

logger = logging.getLogger("ticketwar.revocation")

# The random id of a session, set at login: what a logout revokes.
SID_KEY = "_sid"
# How often the watcher reads the feed, and how long after the start of its last successful read
# a process still answers from memory. The second is the guarantee (revocation within 1 s on
# every process); the first leaves room for three slow or failed reads before a process doubts.
POLL_SECONDS = 0.25
IN_SYNC_SECONDS = 1.0
# Users kept per process (a few hundred bytes each); past it the copies start again empty.
USER_COPIES_MAX = 100_000
# How long entries about users are kept: a watcher that fell further behind reloads everything.
USER_ENTRIES_KEPT_SECONDS = 24 * 60 * 60

_MISSING = object()


class FeedState:
    """This process's view of the feed: the user copies, the ended sessions, and how fresh both are.

    Reads on the request path take no lock (dict lookups are atomic); writes do. ``generation``
    grows with every change that drops a user copy: a copy loaded from PostgreSQL is kept only if
    no drop happened while it was being read (it may have read the row from before the change).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users: dict[int, Any] = {}
        self.sessions: dict[str, float] = {}  # ended session id -> when (epoch seconds)
        self.generation = 0
        self.last_seq: int | None = None  # None: nothing read yet
        self.synced_at = float("-inf")  # monotonic start of the last successful read

    def in_sync(self) -> bool:
        return time.monotonic() - self.synced_at < IN_SYNC_SECONDS

    def keep_user(self, user_id: int, user: Any, generation: int) -> None:
        with self.lock:
            if generation != self.generation:
                return  # a drop arrived while the row was read: it may be the old row
            if len(self.users) >= USER_COPIES_MAX:
                self.users.clear()
            self.users[user_id] = user

    def apply(self, kind: str, user_ids: Iterable[int | None] = (), session_id: str = "", at: float = 0.0) -> None:
        with self.lock:
            self._apply(kind, user_ids, session_id, at or time.time())

    def _apply(self, kind: str, user_ids: Iterable[int | None], session_id: str, at: float) -> None:
        if kind == Revocation.Kind.SESSION:
            self.sessions[session_id] = at
            return
        if kind == Revocation.Kind.USER:
            for user_id in user_ids:
                self.users.pop(user_id, None)
        else:
            self.users.clear()
        self.generation += 1


state = FeedState()


# --- recording -------------------------------------------------------------------------------

# One statement: take the next number (the counter's row lock is held until this transaction
# ends, so numbers are taken in commit order; a rollback gives it back) and write the entries.
_RECORD = """
WITH counter AS (
    INSERT INTO accounts_revocationcounter (id, last) VALUES (1, 1)
    ON CONFLICT (id) DO UPDATE SET last = accounts_revocationcounter.last + 1
    RETURNING last
)
INSERT INTO accounts_revocation (seq, kind, user_id, session_id, created_at)
SELECT counter.last, %(kind)s, ids.id, %(session_id)s, %(now)s
FROM counter, unnest(%(user_ids)s::bigint[]) AS ids(id)
"""


def _record(kind: str, user_ids: list[int | None], session_id: str = "") -> None:
    """Write one feed entry in the current transaction, and apply it here at once (and again
    after the commit: a request of this process that read the user between the change and the
    commit must not keep that copy)."""
    with connection.cursor() as cursor:
        cursor.execute(_RECORD, {"kind": kind, "user_ids": user_ids, "session_id": session_id, "now": timezone.now()})
    state.apply(kind, user_ids, session_id)
    if kind != Revocation.Kind.SESSION and connection.in_atomic_block:
        transaction.on_commit(partial(state.apply, kind, user_ids, session_id))


def session_revoke(*, session_id: str, user_id: int | None) -> None:
    """End the session ``session_id`` on every process (logout)."""
    _record(Revocation.Kind.SESSION, [user_id], session_id)


def users_changed(*, user_ids: Iterable[int]) -> None:
    """Every process drops its copies of these users (a change made with ``update()``, which
    sends no signal; saves and deletes are recorded by the signal receivers below)."""
    ids = sorted({int(user_id) for user_id in user_ids})
    if ids:
        _record(Revocation.Kind.USER, ids)


def all_users_changed() -> None:
    """Every process drops every user copy (a group's permissions changed, a group deleted)."""
    _record(Revocation.Kind.ALL, [None])


# --- reading: the watcher ----------------------------------------------------------------------

# One statement, so the counter and the entries come from the same snapshot: the entries read
# are complete exactly when their numbers run from ``after`` + 1 to the counter without a gap.
_READ = """
SELECT counter.last, r.seq, r.kind, r.user_id, r.session_id, r.created_at
FROM (SELECT COALESCE((SELECT last FROM accounts_revocationcounter WHERE id = 1), 0) AS last) AS counter
LEFT JOIN accounts_revocation AS r ON r.seq > %(after)s
ORDER BY r.seq
"""


def poll() -> None:
    """Read and apply the entries this process has not seen (the watcher, every POLL_SECONDS)."""
    started = time.monotonic()
    after = state.last_seq
    with connection.cursor() as cursor:
        cursor.execute(_READ, {"after": -1 if after is None else after})
        rows = cursor.fetchall()
    last = rows[0][0]
    entries = [row[1:] for row in rows if row[1] is not None]
    complete = after is not None and (
        last == after or sorted({entry[0] for entry in entries}) == list(range(after + 1, last + 1))
    )
    with state.lock:
        if not complete:
            # The first read, or a gap (entries pruned while this process was not reading, or a
            # restored database): start again from everything the feed still holds. The ended
            # sessions are swapped in whole: requests read them without the lock.
            state.users.clear()
            state.generation += 1
            state.sessions = {
                session_id: created_at.timestamp()
                for _seq, kind, _user_id, session_id, created_at in entries
                if kind == Revocation.Kind.SESSION
            }
            entries = []
        for _seq, kind, user_id, session_id, created_at in entries:
            state._apply(kind, [user_id], session_id, created_at.timestamp())
        state.last_seq = last
        state.synced_at = started


def _forget_expired_sessions() -> None:
    """Drop the ids of sessions whose cookies have expired anyway (bounded memory)."""
    horizon = time.time() - settings.SESSION_COOKIE_AGE
    with state.lock:
        for session_id in [sid for sid, at in state.sessions.items() if at < horizon]:
            del state.sessions[session_id]


def _watch_forever() -> None:
    failures, next_cleanup = 0, 0.0
    while True:
        started = time.monotonic()
        try:
            poll()
            failures = 0
            if started > next_cleanup:
                _forget_expired_sessions()
                close_old_connections()
                next_cleanup = started + 60
        except Exception:
            failures += 1
            if failures == 1 or failures % 240 == 0:  # at once, then once a minute
                logger.warning("revocation feed unreadable: requests check PostgreSQL", exc_info=True)
            connection.close()  # the next read starts on a new connection
        time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))


_watcher = ProcessThread("revocation-watcher", _watch_forever)


def in_sync() -> bool:
    """True while this process may answer from memory (see the module docstring)."""
    if settings.REVOCATION_WATCH_IN_BACKGROUND:
        _watcher.ensure()
    return state.in_sync()


# --- the request path ----------------------------------------------------------------------------


def session_ended(session_id: str) -> bool:
    """Has the session ``session_id`` been ended (logged out)? From memory while in sync."""
    if session_id in state.sessions:
        return True
    if in_sync():
        return False
    return Revocation.objects.filter(kind=Revocation.Kind.SESSION, session_id=session_id).exists()


def user_get(user_id: int, load: Callable[[], Any]) -> Any:
    """The user ``user_id`` (or None: no such active user): this process's copy while in sync,
    else ``load()`` (PostgreSQL). Each request gets its own copy of the row."""
    if not in_sync():
        count_read("user", hit=False)
        return load()
    held = state.users.get(user_id, _MISSING)
    if held is not _MISSING:
        count_read("user", hit=True)
        return copy.copy(held)
    count_read("user", hit=False)
    generation = state.generation
    user = load()
    state.keep_user(user_id, copy.copy(user), generation)
    return user


def session_user(request) -> Any:
    """``request.user``: Django's ``get_user`` for a session not ended, else AnonymousUser.

    A logged-in session without an id (made before ids were given) cannot be revoked: refused.
    """
    session = request.session
    if auth.SESSION_KEY in session:
        session_id = session.get(SID_KEY)
        if not session_id or session_ended(session_id):
            session.flush()
            return AnonymousUser()
    return auth.get_user(request)


def _cached_user(request) -> Any:
    if not hasattr(request, "_cached_user"):
        request._cached_user = session_user(request)
    return request._cached_user


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, with ended sessions refused (``session_user``). Still lazy: a request that
    never looks at ``request.user`` never reads its session."""

    def process_request(self, request) -> None:
        super().process_request(request)  # its checks (a session middleware before it)
        request.user = SimpleLazyObject(partial(_cached_user, request))
        request.auser = sync_to_async(partial(_cached_user, request))


async def websocket_user(scope) -> Any:
    """The user of a websocket's session (Channels' ``get_user``: the backend and the hash check),
    AnonymousUser for an ended one."""
    if await _session_refused(scope["session"]):
        return AnonymousUser()
    return await channels_get_user(scope)


class WebsocketAuthMiddleware(AuthMiddleware):
    """Channels' ``AuthMiddleware`` with the same rule as the pages: an ended session is nobody."""

    async def resolve_scope(self, scope) -> None:
        scope["user"]._wrapped = await websocket_user(scope)


@database_sync_to_async
def _session_refused(session) -> bool:
    if auth.SESSION_KEY not in session:
        return False
    session_id = session.get(SID_KEY)
    return not session_id or session_ended(session_id)


# --- what records entries ------------------------------------------------------------------------


def _on_login(sender, request, user, **kwargs) -> None:
    if request is None:  # channels' login (not used): no session of ours to mark
        return
    previous = request.session.get(SID_KEY)
    if previous:
        # Logging in again in the same browser: the session before it ends, as Django's own
        # key cycling ends a stored session.
        session_revoke(session_id=previous, user_id=user.pk)
    request.session[SID_KEY] = secrets.token_urlsafe(24)


def _on_logout(sender, request, user, **kwargs) -> None:
    session_id = request.session.get(SID_KEY) if request is not None else None
    if session_id:
        session_revoke(session_id=session_id, user_id=getattr(user, "pk", None))


def _on_user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # nobody holds a copy of a new user; the last login changes no right
    users_changed(user_ids=[instance.pk])


def _on_user_deleted(sender, instance, **kwargs) -> None:
    users_changed(user_ids=[instance.pk])


def _on_user_m2m(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A user's groups or own permissions changed (from either side of the relation)."""
    if not action.startswith("post_"):
        return
    if not reverse:
        users_changed(user_ids=[instance.pk])
    elif pk_set:
        users_changed(user_ids=pk_set)
    else:  # cleared from the group's or permission's side: whose is not said
        all_users_changed()


def _on_group_permissions(sender, action, **kwargs) -> None:
    if action.startswith("post_"):
        all_users_changed()


def _on_group_or_permission_deleted(sender, **kwargs) -> None:
    all_users_changed()


def connect_signals() -> None:
    """Connect the receivers that record feed entries (AccountsConfig.ready)."""
    user_model = auth.get_user_model()
    uid = "accounts.revocation."
    auth.user_logged_in.connect(_on_login, dispatch_uid=uid + "login")
    auth.user_logged_out.connect(_on_logout, dispatch_uid=uid + "logout")
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid=uid + "user_saved")
    post_delete.connect(_on_user_deleted, sender=user_model, dispatch_uid=uid + "user_deleted")
    m2m_changed.connect(_on_user_m2m, sender=user_model.groups.through, dispatch_uid=uid + "groups")
    m2m_changed.connect(_on_user_m2m, sender=user_model.user_permissions.through, dispatch_uid=uid + "perms")
    m2m_changed.connect(_on_group_permissions, sender=Group.permissions.through, dispatch_uid=uid + "group_perms")
    post_delete.connect(_on_group_or_permission_deleted, sender=Group, dispatch_uid=uid + "group_deleted")
    post_delete.connect(_on_group_or_permission_deleted, sender=Permission, dispatch_uid=uid + "perm_deleted")


# --- housekeeping and tests -------------------------------------------------------------------------


def feed_prune(*, now=None) -> int:
    """Delete the entries nothing can use any more (the beat, hourly); returns how many.

    A session entry is kept while a copy of its cookie could still be accepted
    (``SESSION_COOKIE_AGE`` after the logout), a user entry a day.
    """
    now = now or timezone.now()
    sessions = Revocation.objects.filter(
        kind=Revocation.Kind.SESSION, created_at__lt=now - timezone.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    )
    others = Revocation.objects.exclude(kind=Revocation.Kind.SESSION).filter(
        created_at__lt=now - timezone.timedelta(seconds=USER_ENTRIES_KEPT_SECONDS)
    )
    return sessions.delete()[0] + others.delete()[0]


def reset(*, in_sync_for: float = 0.0) -> None:
    """Forget everything this process knows (tests); with ``in_sync_for``, act as if the watcher
    had just read the whole feed and would stay in sync that many seconds."""
    with state.lock:
        state.users.clear()
        state.sessions.clear()
        state.generation += 1
        state.last_seq = None
        state.synced_at = time.monotonic() + in_sync_for - IN_SYNC_SECONDS if in_sync_for else float("-inf")
