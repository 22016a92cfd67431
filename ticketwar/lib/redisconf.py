"""How each Redis role is reached, as plain data (no Django: the settings import it).

Used by the settings (django-redis, Celery, channels-redis) and by ``ticketwar.lib.redis`` (the
clients the code builds itself), so a connection made by hand checks certificates exactly as
the libraries' do.
"""

from __future__ import annotations


def tls_options(url: str, ca_file: str = "") -> dict:
    """redis-py keyword arguments that make a rediss:// connection verify the server.

    ``required`` plus the host name check (redis-py's default): against ``ca_file`` (PEM) when
    given, else the system's CA store. Empty for a plain redis:// URL.
    """
    if not url.startswith("rediss://"):
        return {}
    return {"ssl_cert_reqs": "required", "ssl_ca_certs": ca_file or None}
