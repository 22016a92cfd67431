"""One ASGI application for HTTP and websockets (run by uvicorn).

Websockets go to Channels. HTTP goes to Django's *WSGI* handler, run by a2wsgi on a fixed pool
of ``WEB_THREADS`` threads per process: Django's ASGI handler runs each request's synchronous
code (every view and middleware here) in a thread created for that request, so under a crowd it
spent its time creating threads and hopping between them, and opened a database connection per
request. A fixed pool keeps one persistent connection per thread (``CONN_MAX_AGE``) and served
about 1.6 times the requests per second on the same machine (docs/BENCHMARKS.md, "Web server").
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")
django_wsgi_app = get_wsgi_application()

from a2wsgi import WSGIMiddleware  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from ticketwar.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": WSGIMiddleware(django_wsgi_app, workers=settings.WEB_THREADS),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
