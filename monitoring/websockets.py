"""Active students behind open websockets: an ASGI middleware around every consumer.

A student who keeps a waiting page open is active while the socket lives: counted
(``monitoring.activity.touch``) when the socket is accepted and whenever a message goes out to
it, at most every ``TOUCH_EVERY_SECONDS`` per socket. Consumers stay thin and know nothing of
monitoring; ``ticketwar/asgi.py`` puts this inside the authentication stack, so the scope's user
is known.
"""

from __future__ import annotations

import math
import time

from asgiref.sync import sync_to_async

from . import activity

_COUNTED = frozenset({"websocket.accept", "websocket.send"})


class ActiveStudentsMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        last = -math.inf

        async def send_and_count(message) -> None:
            nonlocal last
            await send(message)
            if message["type"] not in _COUNTED:
                return
            user = scope.get("user")
            now = time.monotonic()
            if user is not None and user.is_authenticated and now - last >= activity.TOUCH_EVERY_SECONDS:
                last = now
                await sync_to_async(activity.touch, thread_sensitive=False)(user.pk)

        return await self.app(scope, receive, send_and_count)
