"""Django's WSGI handler, served by granian's WSGI interface (the Procfile's ``web``).

HTTP runs here with no ASGI bridge: granian's Rust server parses the requests and runs this
handler on a fixed pool of ``--blocking-threads`` threads per worker, each keeping its
persistent database connection (``CONN_MAX_AGE``). Measured on the same machine, a bare Django
view cost 0.17 ms of server CPU per request this way against 0.49 ms on uvicorn + a2wsgi
(docs/BENCHMARKS.md, "The floor"). Websockets are served by their own process
(``ticketwar.asgi``, the Procfile's ``ws``).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")
application = get_wsgi_application()
