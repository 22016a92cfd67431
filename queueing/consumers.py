"""Websocket ``/ws/queue/<queue_id>/``: live position, wait and outcome of one claim.

Thin: authenticates in ``connect``, joins the entry's and the event's groups, never changes
state (the student behind an open socket is counted active by ``monitoring.websockets``, around
every consumer). Position between decisions is derived locally from the event's progress messages
(see ``queueing.push``), so a batch costs O(1) work per waiting client.
"""

from __future__ import annotations

import math
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.revocation import websocket_user

from .models import LIVE_STATUSES
from .outlook import outlook_of
from .push import entry_group, event_group
from .selectors import decided_total, entry_as_dict, entry_of_owner

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def _load_snapshot(public_id: uuid.UUID, user_id: int):
    """The entry (None unless ``user_id`` owns it), its JSON state and the event's decided count.

    One thread hop and one read of the row: called after joining the entry's group, so a
    decision made in between is either in this read or pushed to us.
    """
    entry = entry_of_owner(public_id=public_id, user_id=user_id)
    if entry is None:
        return None, None, 0
    payload = entry_as_dict(entry)
    # Read after the position count: decisions in between make the position a little too
    # high, never too low.
    return entry, payload, decided_total(entry.event_id)


def _public(payload: dict) -> dict:
    keys = ("queue_id", "status", "position", "eta_seconds", "ticket", "reason", "reason_code", "attempts")
    public = {k: payload.get(k) for k in keys}
    if payload.get("seats_left") is not None:  # a decision carries the seats left after it
        public["seats_left"] = payload["seats_left"]
    return public


class QueueConsumer(AsyncJsonWebsocketConsumer):
    groups: list[str] = []

    async def connect(self) -> None:
        # Accept first so that a refusal can carry a meaningful close code.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        try:
            public_id = uuid.UUID(str(self.scope["url_route"]["kwargs"]["queue_id"]))
        except ValueError:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        # Join the entry's group before reading it: a decision made in between still reaches us.
        self.joined = [entry_group(public_id)]
        await self.channel_layer.group_add(self.joined[0], self.channel_name)
        entry, payload, self.decided_at_start = await _load_snapshot(public_id, user.id)
        if entry is None:
            # Not theirs (or unknown): leave the group before anything could be pushed to it.
            await self.channel_layer.group_discard(self.joined.pop(), self.channel_name)
            await self.close(code=CLOSE_NOT_FOUND)
            return
        # Progress messages carry cumulative counts: one missed before joining changes nothing.
        self.joined.append(event_group(entry.event_id))
        await self.channel_layer.group_add(self.joined[1], self.channel_name)
        self.state = _public(payload)
        self.start_position = payload["position"]
        self.user_id = user.id
        await self.send_json(self.state)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Clients only listen; anything they send is ignored."""

    async def _still_logged_in(self) -> bool:
        """Is the session this socket opened with still the same student's? Asked before every
        push of the student's own data (a decision may carry the ticket's codes): a socket left
        open by a session ended since (logout, password change, deactivation) hears no more. A
        scope without a session (the tests' bare router) has nothing that could end."""
        if "session" not in self.scope:
            return True
        user = await websocket_user(self.scope)
        return user.is_authenticated and user.pk == self.user_id

    async def queue_entry(self, message: dict) -> None:
        if not await self._still_logged_in():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.state = _public(message["entry"])
        await self.send_json(self.state)

    async def waitlist_offer(self, message: dict) -> None:
        """A freed seat is offered to this student (waitlist.notify): forwarded as ``offer``."""
        if not await self._still_logged_in():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send_json({**self.state, "offer": message["offer"]})

    async def queue_progress(self, message: dict) -> None:
        if self.state.get("status") not in LIVE_STATUSES or message.get("decided") is None:
            return
        if self.start_position is None:
            return
        passed = max(0, int(message["decided"]) - self.decided_at_start)
        position = max(1, self.start_position - passed)
        rate = message.get("drain_rate") or 0
        eta = math.ceil(position / rate) if rate else self.state.get("eta_seconds")
        update = {"position": position, "eta_seconds": eta}
        if message.get("seats_left") is not None:
            # The page's sentence ("you are 812th for 500 seats") follows the seats and the place.

            update["seats_left"] = message["seats_left"]
            update["outlook"] = outlook_of(
                position=position, seats_left=message["seats_left"], capacity=message.get("capacity") or 0
            )
        if any(self.state.get(key) != value for key, value in update.items()):
            self.state = {**self.state, **update}
            await self.send_json(self.state)
