"""A worker whose broker connection is lost while a task runs must not crash (common/broker.py)."""

from __future__ import annotations

import contextlib
import socket

import pytest
from kombu import Consumer, Exchange, Queue
from kombu.common import ignore_errors

from tools import devservices

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sentinel_group(tmp_path):
    group = devservices.SentinelGroup(tmp_path / "sentinel")
    group.start()
    yield group
    group.stop()


def test_closing_a_lost_sentinel_connection_with_an_unacked_message_does_not_raise(sentinel_group):
    """Celery's order on a lost broker connection: ``collect()`` (errors ignored), then
    ``close()`` (connection errors ignored). With a message unacknowledged (a running
    ``acks_late`` task) and the fanout subscription Celery's remote control keeps, kombu 5.7's
    close raised AttributeError there, and Celery stopped the worker ("Unrecoverable error")."""
    from ticketwar.celery import app

    url = ";".join(f"sentinel://127.0.0.1:{port}/0" for _, port in sentinel_group.sentinels)
    connection = app.connection_for_read(url, transport_options={"master_name": sentinel_group.master})
    channel = connection.default_channel
    queue = Queue("tw-broker-test", Exchange("tw-broker-test"), "tw-broker-test")
    with connection.Producer() as producer:
        producer.publish({"n": 1}, exchange=queue.exchange, routing_key="tw-broker-test", declare=[queue])
    received = []
    Consumer(channel, queues=[queue], callbacks=[lambda body, message: received.append(message)]).consume()
    fanout = Queue("tw-broker-test-fanout", Exchange("tw-broker-test-fanout", type="fanout"), auto_delete=True)
    Consumer(channel, queues=[fanout], callbacks=[lambda body, message: None], no_ack=True).consume()
    connection.drain_events(timeout=5)
    assert len(received) == 1  # delivered, not acknowledged: the task is "running"
    with contextlib.suppress(socket.timeout):  # until idle: BRPOP and SUBSCRIBE outstanding
        for _ in range(10):
            connection.drain_events(timeout=0.3)
    assert channel._in_poll and channel._in_listen

    sentinel_group.kill_primary()
    with contextlib.suppress(Exception):  # Celery ignores everything here
        connection.collect(socket_timeout=0.5)
    ignore_errors(connection, connection.close)  # what Celery does next: must not raise
    # The task finishes after that: its acknowledgement is a lost connection, which Celery
    # recovers from, not an AttributeError, which stops the worker.
    with pytest.raises(connection.connection_errors):
        received[0].ack()
