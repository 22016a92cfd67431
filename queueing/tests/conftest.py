"""Fixtures of the queue tests (their helpers are in tools/testing.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def decided_log(transactional_db):
    """A trigger recording every processing -> completed/failed transition of ticket_queue.

    Lets a test prove that no entry was decided twice, whatever the workers believe.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TABLE IF NOT EXISTS test_decided_log (entry_id bigint NOT NULL, status text NOT NULL);
            CREATE OR REPLACE FUNCTION test_log_decided() RETURNS trigger AS $$
            BEGIN INSERT INTO test_decided_log (entry_id, status) VALUES (NEW.id, NEW.status); RETURN NEW; END
            $$ LANGUAGE plpgsql;
            DROP TRIGGER IF EXISTS test_log_decided ON ticket_queue;
            CREATE TRIGGER test_log_decided AFTER UPDATE ON ticket_queue FOR EACH ROW
            WHEN (OLD.status = 'processing' AND NEW.status IN ('completed', 'failed'))
            EXECUTE FUNCTION test_log_decided();
            TRUNCATE test_decided_log;
            """
        )

    def read() -> list[tuple[int, str]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT entry_id, status FROM test_decided_log")
            return cursor.fetchall()

    yield read
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER IF EXISTS test_log_decided ON ticket_queue; DROP TABLE IF EXISTS test_decided_log;"
        )
