"""kombu's Redis transports (plain, TLS, Sentinel) with two repairs: a consumer channel that
closes, or acknowledges a task, after its connection was lost no longer crashes the worker.

kombu 5.7's ``Channel.close()`` disconnects its connection pools *before* the virtual channel
restores the unacknowledged messages (every running task: ``acks_late``). When the broker
connection is lost, Celery first ``collect()``s the connection (which drops its settings), then
closes it; the restore then has to build a new pool from settings that are gone, raises
``AttributeError``, and Celery stops the worker as "Unrecoverable error". Seen in the Sentinel
drill: the primary killed while a drain task ran, and the worker exited for good.

Here the restore runs first, while the pool still exists. If the broker is unreachable it fails
quietly: the messages stay in the broker's unacked set and come back after the visibility
timeout (and the claim queue does not depend on them: the table is the truth, beat ticks
every 2 s).
"""

from __future__ import annotations

import logging

import redis.exceptions
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

logger = logging.getLogger("ticketwar.broker")


class _RestoreBeforeClose:
    def _connparams(self, asynchronous: bool = False) -> dict:
        # A channel whose connection is gone (collected, closed) rebuilds its pool from
        # settings that are no longer there: the acknowledgement of a task that finished just
        # after the connection was lost then raised AttributeError. Say what it is instead, a
        # lost connection, which Celery recovers from (the message comes back after the
        # visibility timeout: at-least-once, and the claim table is the truth anyway).
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection of this channel is closed")
        return super()._connparams(asynchronous=asynchronous)

    def close(self) -> None:
        if not self.closed and self._qos:
            try:
                self._qos.restore_unacked_once()  # marks itself done even when it fails
            except Exception:
                # They are still in the broker's unacked set, which the visibility timeout
                # restores; forget them here (kombu asserts an empty list after a restore).
                self._qos._delivered.clear()
                logger.info("unacked broker messages not restored now; the visibility timeout will", exc_info=True)
        super().close()


class Channel(_RestoreBeforeClose, kombu_redis.Channel):
    pass


class SentinelChannel(_RestoreBeforeClose, kombu_redis.SentinelChannel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def install() -> None:
    """Make redis://, rediss:// and sentinel:// broker URLs use the transports above."""
    TRANSPORT_ALIASES.update(
        redis=f"{__name__}:Transport", rediss=f"{__name__}:Transport", sentinel=f"{__name__}:SentinelTransport"
    )
