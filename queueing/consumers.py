"""Websocket ``/ws/queue/<queue_id>/``: live position, wait and outcome of one claim.

Thin: authenticates in ``connect``, joins the entry's and the event's groups, never changes
state. Position between decisions is derived locally from the event's progress messages
(see ``queueing.push``), so a batch costs O(1) work per waiting client.
"""

from __future__ import annotations

import math
import time

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .models import LIVE_STATUSES
from .push import entry_group, event_group

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def _load(queue_id: str, user_id: int):
    from .selectors import entry_of_owner

    return entry_of_owner(public_id=queue_id, user_id=user_id)


@database_sync_to_async
def _snapshot(entry) -> tuple[dict, int]:
    from .selectors import decided_total, entry_as_dict

    entry.refresh_from_db()
    payload = entry_as_dict(entry)
    # Read after the position count: decisions in between make the position a little too
    # high, never too low.
    return payload, decided_total(entry.event_id)


def _public(payload: dict) -> dict:
    keys = ("queue_id", "status", "position", "eta_seconds", "ticket", "reason", "reason_code", "attempts")
    return {k: payload.get(k) for k in keys}


class QueueConsumer(AsyncJsonWebsocketConsumer):
    groups: list[str] = []

    async def connect(self) -> None:
        # Accept first so that a refusal can carry a meaningful close code.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        entry = await _load(self.scope["url_route"]["kwargs"]["queue_id"], user.id)
        if entry is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.joined = [entry_group(entry.public_id), event_group(entry.event_id)]
        # Join before reading the snapshot: a decision made in between still reaches us.
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        payload, self.decided_at_start = await _snapshot(entry)
        self.state = _public(payload)
        self.start_position = payload["position"]
        self.user_id, self.active_at = user.id, -math.inf
        await self._still_here()
        await self.send_json(self.state)

    async def _still_here(self) -> None:
        """Count this student as active (monitoring) while the socket is open, every ~30 s."""
        from monitoring import activity

        now = time.monotonic()
        if now - self.active_at >= activity.TOUCH_EVERY_SECONDS:
            self.active_at = now
            await sync_to_async(activity.touch, thread_sensitive=False)(self.user_id)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Clients only listen; anything they send is ignored."""

    async def queue_entry(self, message: dict) -> None:
        await self._still_here()
        self.state = _public(message["entry"])
        await self.send_json(self.state)

    async def waitlist_offer(self, message: dict) -> None:
        """A freed seat is offered to this student (waitlist.notify): forwarded as ``offer``."""
        await self.send_json({**self.state, "offer": message["offer"]})

    async def queue_progress(self, message: dict) -> None:
        await self._still_here()
        if self.state.get("status") not in LIVE_STATUSES or message.get("decided") is None:
            return
        if self.start_position is None:
            return
        passed = max(0, int(message["decided"]) - self.decided_at_start)
        position = max(1, self.start_position - passed)
        rate = message.get("drain_rate") or 0
        eta = math.ceil(position / rate) if rate else self.state.get("eta_seconds")
        if (position, eta) != (self.state.get("position"), self.state.get("eta_seconds")):
            self.state = {**self.state, "position": position, "eta_seconds": eta}
            await self.send_json(self.state)
