"""How each Redis role is reached, as plain data (no Django: the settings import it).

Used by the settings (django-redis, Celery, channels-redis) and by ``common.redis`` (the
clients the code builds itself), so a connection made by hand checks certificates exactly as
the libraries' do.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit


def tls_options(url: str, ca_file: str = "") -> dict:
    """redis-py keyword arguments that make a rediss:// connection verify the server.

    ``required`` plus the host name check (redis-py's default): against ``ca_file`` (PEM) when
    given, else the system's CA store. Empty for a plain redis:// URL.
    """
    if not url.startswith("rediss://"):
        return {}
    return {"ssl_cert_reqs": "required", "ssl_ca_certs": ca_file or None}


def parse_sentinels(items: list[str]) -> list[tuple[str, int]]:
    """``["host:port", ...]`` (REDIS_SENTINELS) as ``[(host, port), ...]``; ValueError says which is wrong."""
    sentinels = []
    for item in items:
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    return sentinels


def url_parts(url: str) -> dict:
    """What a Sentinel-found primary takes from a redis(s):// URL: credentials, database, TLS."""
    parsed = urlsplit(url)
    db = parsed.path.lstrip("/")
    return {
        "username": unquote(parsed.username) if parsed.username else None,
        "password": unquote(parsed.password) if parsed.password else None,
        "db": int(db) if db.isdigit() else 0,
        "tls": parsed.scheme == "rediss",
    }


def sentinel_kwargs(url: str, ca_file: str = "", *, timeout: float) -> dict:
    """How to talk to the sentinels themselves: with the credentials and the TLS of ``url`` (the
    data connections' REDIS_URL), since sentinels guarding a password-protected, TLS-only Redis
    are set up the same way; without them a sentinel with ``requirepass`` refuses (NOAUTH) and
    a TLS-only one never answers."""
    parts = url_parts(url)
    kwargs: dict = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if parts["password"]:
        kwargs.update(username=parts["username"], password=parts["password"])
    if parts["tls"]:
        kwargs.update(ssl=True, **tls_options(url, ca_file))
    return kwargs


def userinfo(parts: dict) -> str:
    if not parts["password"]:
        return ""
    return f"{quote(parts['username'] or '', safe='')}:{quote(parts['password'], safe='')}@"


def sentinel_cache_location(url: str, master: str) -> str:
    """django-redis' Sentinel LOCATION: the master's *name* where the host would be."""
    parts = url_parts(url)
    return f"{'rediss' if parts['tls'] else 'redis'}://{userinfo(parts)}{master}/{parts['db']}"


def sentinel_broker_url(url: str, sentinels: list[tuple[str, int]]) -> str:
    """kombu's Sentinel URL: one ``sentinel://`` per sentinel, joined by ``;`` (the master's
    password and database ride on each; the master's name is a transport option)."""
    parts = url_parts(url)
    return ";".join(f"sentinel://{userinfo(parts)}{host}:{port}/{parts['db']}" for host, port in sentinels)
