"""Errors are part of the interface.

Services raise a ``DomainError`` subclass with a human sentence; this module maps it to a
status code in one place. Unknown exceptions are logged (and reach Sentry through its
logging integration) and answered with a JSON 500 on the API, never an HTML page.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

import psycopg
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.functional import SimpleLazyObject, empty
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.defaults import server_error as default_server_error

logger = logging.getLogger("ticketwar.errors")

# Seconds a client is asked to wait before trying again while the database is away.
OUTAGE_RETRY_AFTER_SECONDS = 5


class DomainError(Exception):
    """A refusal the user can read. Subclasses set ``status`` and ``code``."""

    status: int = 400
    code: str = "bad_request"
    default_message: str = gettext_noop("The request could not be handled.")

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or _(self.default_message)
        self.extra = extra
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    default_message = gettext_noop("You are not allowed to do this.")


_GENERIC_MESSAGES = {
    400: gettext_noop("The request could not be understood."),
    401: gettext_noop("Please log in first."),
    403: gettext_noop("You are not allowed to do this."),
    404: gettext_noop("There is nothing at this address."),
    405: gettext_noop("This method is not allowed here."),
    413: gettext_noop("The request is too large."),
    429: gettext_noop("Too many requests. Please wait a moment."),
    500: gettext_noop("Something went wrong on our side. It has been logged; please try again."),
    503: gettext_noop("The service is briefly unavailable. Please try again in a moment."),
}


def error_response(error: DomainError) -> JsonResponse:
    response = JsonResponse(error.as_dict(), status=error.status)
    retry_after = error.extra.get("retry_after")
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


# The machine code of an error answered without a more specific one.
_GENERIC_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


def json_error(status: int, message: str, **extra: Any) -> JsonResponse:
    """``{error, code, ...}``; ``code`` defaults to the status's generic one (e.g. bad_request)."""
    extra.setdefault("code", _GENERIC_CODES.get(status, "error"))
    return JsonResponse({"error": message, **extra}, status=status)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


class JsonErrorMiddleware:
    """Turns DomainError into its JSON answer anywhere, and API crashes into JSON 500s.

    A database that is down becomes a clear 503 rather than a stack trace; input no view can
    read (``unreadable_request``) a 400/404/413 before any view or CSRF check runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Per-request cost: two substring tests; a POST's form body is parsed here instead of in
        # CsrfViewMiddleware (once either way; a JSON body is not read).
        refusal = unreadable_request(request)
        if refusal is not None:
            return refusal
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_request(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            # Unknown /api/ paths, require_GET's empty 405s and the like: clients read JSON.
            message = _(_GENERIC_MESSAGES.get(response.status_code, DomainError.default_message))
            replacement = json_error(response.status_code, message)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DomainError):
            return error_response(exception)
        if is_database_outage(exception):
            return database_unavailable(request, exception)
        if is_api_request(request) and isinstance(exception, SuspiciousOperation):
            # The client's doing (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields...):
            # a 413/400 and a warning, not a 500 with a stack trace.
            logger.warning("bad request: %s", type(exception).__name__, extra={"path": request.path})
            if isinstance(exception, RequestDataTooBig):
                return json_error(413, _("The request is too large."), code="too_large")
            return json_error(400, _("The request could not be understood."), code="bad_request")
        if is_api_request(request):
            logger.exception("unhandled error", exc_info=exception, extra={"path": request.path})
            return json_error(500, _("Something went wrong on our side. It has been logged; please try again."))
        return None


def unreadable_request(request: HttpRequest) -> HttpResponse | None:
    """400/404/413 for input no view can use, before anything reads it.

    A NUL character (``%00``) in the path or the query string cannot reach PostgreSQL (psycopg
    refuses it with a ValueError). A form body over DATA_UPLOAD_MAX_MEMORY_SIZE, with too many
    fields or a broken multipart boundary raises when first read, which is CsrfViewMiddleware's
    ``process_view`` (or the CSRF-protected 404/400 pages): Django answers those with a 500 or
    logs an error with a stack trace.
    """
    status = None
    if "\x00" in request.path:
        status, kind = 404, "nul"  # nothing can live at such an address: as for any unknown slug
    elif "%00" in request.META.get("QUERY_STRING", ""):
        status, kind = 400, "nul"
    elif request.method == "POST":
        try:
            request.POST  # noqa: B018 - parsed now, where a failure can be answered
        except RequestDataTooBig:
            status, kind = 413, "too_large"
        except (MultiPartParserError, SuspiciousOperation, UnreadablePostError):  # too many fields...
            status, kind = 400, "unreadable"
    if status is None:
        return None
    logger.warning("bad request: %s", kind, extra={"path": request.path[:200]})
    message = _(_GENERIC_MESSAGES[status])
    if is_api_request(request):
        return json_error(status, message, code=_GENERIC_CODES[status])
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def is_database_outage(exception: BaseException | None) -> bool:
    """PostgreSQL unreachable: Django's or psycopg's OperationalError/InterfaceError (a pool
    timeout is one), or another database error about the connection."""
    outage = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    return isinstance(exception, outage) or (
        isinstance(exception, (DatabaseError, psycopg.DatabaseError)) and "connection" in str(exception).lower()
    )


# An outage fails every request for its whole length: one warning per interval and process says
# so (with the count of requests refused since the last one), not a stack trace per request.
OUTAGE_LOG_INTERVAL_SECONDS = 60.0
_outage_log = {"last": float("-inf"), "refused": 0}
_outage_log_lock = threading.Lock()


def _log_outage(request: HttpRequest, exception: BaseException) -> None:
    now = time.monotonic()
    with _outage_log_lock:
        _outage_log["refused"] += 1
        if now - _outage_log["last"] < OUTAGE_LOG_INTERVAL_SECONDS:
            return
        refused, _outage_log["refused"], _outage_log["last"] = _outage_log["refused"], 0, now
    logger.warning(
        "database unavailable: answering 503 (%s: %s)",
        type(exception).__name__,
        str(exception).strip().splitlines()[0] if str(exception).strip() else "",
        extra={"path": request.path, "refused": refused},
    )


def database_unavailable(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """The clear 503 (JSON for the API, the 503 page otherwise) of a database that is away."""
    _log_outage(request, exception)
    message = _("The database is briefly unavailable. Please try again in a moment.")
    if is_api_request(request):
        response = json_error(503, message, code="unavailable")
    else:
        user = getattr(request, "user", None)
        if user is not None and not _loaded(user):
            request.user = AnonymousUser()  # the page's header must not try to load it again
        response = render(request, "503.html", {"message": message}, status=503)
    response["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
    # Logged above (a warning, at most once per interval): Django's request log must not add an
    # error with the stack trace for every refused request.
    response._has_been_logged = True
    return response


def _loaded(user) -> bool:
    return not isinstance(user, SimpleLazyObject) or user._wrapped is not empty


class DatabaseOutageMiddleware:
    """Loads the session and the user where an outage can still be answered 503.

    Django turns an exception raised in a middleware into a response at that middleware's own
    layer (``handler500``, or the debug page while DEBUG is on, which bypasses it): no outer
    middleware and no ``process_exception`` ever sees it. The session and the user are loaded
    lazily by whichever middleware first reads ``request.user`` (the rate limits), so this one,
    placed right after AuthenticationMiddleware, reads it first. Exceptions raised in
    views reach ``JsonErrorMiddleware.process_exception`` instead. Same answer with DEBUG on or off.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Per-request cost: none extra; it forces the lazy user a few microseconds earlier than
        # the rate limits would (anonymous without a cookie: no lookup at all).
        try:
            request.user.is_authenticated  # noqa: B018 - evaluated for its side effect (loading)
        except Exception as exception:
            if not is_database_outage(exception):
                raise
            return database_unavailable(request, exception)
        return self.get_response(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500, the last resort (DEBUG off only): an outage met outside the view and outside
    ``DatabaseOutageMiddleware`` (saving a changed session on the way out) still answers 503.
    Django calls this inside its ``except`` block."""
    exception = sys.exc_info()[1]
    if is_database_outage(exception):
        return database_unavailable(request, exception)
    if is_api_request(request):
        return json_error(500, _("Something went wrong on our side. It has been logged; please try again."))

    return default_server_error(request)
