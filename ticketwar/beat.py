"""Celery beat that sends only while it holds a PostgreSQL advisory lock: two beats, one ticking.

Exactly one beat must run (a second sends every periodic task twice). A supervisor can still
start two for a while: a Kubernetes Deployment during a node failure, a forgotten ``celery
beat`` in a shell, a rolling update. The second beat then idles: every ``LOCK_RETRY_SECONDS``
it tries the lock again and takes over within that time once the first one is gone.

The lock is session-level (``pg_try_advisory_lock``) on a connection of its own, so it lives
exactly as long as the beat's connection: a killed beat's lock is freed by PostgreSQL the
moment the socket closes (TCP keepalives cover a host that vanished without closing it). Each
tick first checks the connection with ``SELECT 1``; a beat that lost its connection (PostgreSQL
restarted) stops sending until it holds the lock again. It needs a session: give beat the
direct database connection, never a transaction-mode pooler (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

import contextlib
import logging

import psycopg
from celery.beat import PersistentScheduler
from django.conf import settings

logger = logging.getLogger("ticketwar.beat")

# One key for the whole database (pg_locks shows it as objid); "beat" in hex-speak.
BEAT_LOCK_ID = 0x7B3A7
LOCK_RETRY_SECONDS = 5.0


class BeatLock:
    """A PostgreSQL session advisory lock held on a dedicated connection."""

    def __init__(self, database_url: str, lock_id: int = BEAT_LOCK_ID) -> None:
        self.database_url = database_url
        self.lock_id = lock_id
        self._conn: psycopg.Connection | None = None
        self._waiting_logged = False

    def held(self) -> bool:
        """True if this process holds the lock now (taking it if it is free)."""
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                logger.warning("beat lost its database connection and with it the beat lock")
                self.release()
        try:
            conn = psycopg.connect(
                self.database_url, autocommit=True, connect_timeout=3, application_name="ticketwar-beat",
                keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            )  # fmt: skip
        except psycopg.Error as exc:
            logger.warning("beat cannot reach the database to take the beat lock: %s", type(exc).__name__)
            return False
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", [self.lock_id]).fetchone()[0]
        except psycopg.Error:
            conn.close()
            return False
        if not got:
            conn.close()
            if not self._waiting_logged:
                logger.warning("another beat holds the beat lock: this one idles until it is free")
                self._waiting_logged = True
            return False
        self._conn = conn
        self._waiting_logged = False
        logger.info("beat holds the beat lock and sends the periodic tasks")
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()  # closing the session frees its advisory locks
            self._conn = None


class LockedScheduler(PersistentScheduler):
    """The default file-backed scheduler, sending only while this beat holds the beat lock."""

    def __init__(self, *args, **kwargs) -> None:
        self.beat_lock = BeatLock(settings.DATABASE_URL)
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self.beat_lock.held():
            return LOCK_RETRY_SECONDS
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        super().close()
        self.beat_lock.release()
