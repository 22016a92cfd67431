"""Errors are part of the interface.

Services raise a ``DomainError`` subclass with a human sentence; this module maps it to a
status code in one place. Unknown exceptions are logged (and reach Sentry through its
logging integration) and answered with a JSON 500 on the API, never an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

logger = logging.getLogger("ticketwar.errors")


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


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = gettext_noop("Not found.")


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    default_message = gettext_noop("You are not allowed to do this.")


class ServiceUnavailable(DomainError):
    status = 503
    code = "unavailable"
    default_message = gettext_noop("The service is briefly unavailable. Please try again in a moment.")


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


def json_error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


class JsonErrorMiddleware:
    """Turns DomainError into its JSON answer anywhere, and API crashes into JSON 500s.

    A database that is down becomes a clear 503 rather than a stack trace.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
        if is_api_request(request):
            logger.exception("unhandled error", exc_info=exception, extra={"path": request.path})
            return json_error(500, _("Something went wrong on our side. It has been logged; please try again."))
        return None


def is_database_outage(exception: BaseException | None) -> bool:
    from django.db import DatabaseError, InterfaceError, OperationalError

    return isinstance(exception, (OperationalError, InterfaceError)) or (
        isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
    )


def database_unavailable(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """The clear 503 (JSON for the API, the 503 page otherwise) of a database that is away."""
    logger.error("database unavailable", exc_info=exception, extra={"path": request.path})
    message = _("The database is briefly unavailable. Please try again in a moment.")
    if is_api_request(request):
        response = json_error(503, message, code="database_unavailable")
    else:
        from django.shortcuts import render

        response = render(request, "503.html", {"message": message}, status=503)
    response["Retry-After"] = "5"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. A middleware that needs the database before the view runs (loading the
    session's user for a rate limit or the activity count) fails outside ``process_exception``;
    Django calls this inside its ``except`` block, so the outage still answers a 503, not a 500."""
    import sys

    exception = sys.exc_info()[1]
    if is_database_outage(exception):
        return database_unavailable(request, exception)
    if is_api_request(request):
        return json_error(500, _("Something went wrong on our side. It has been logged; please try again."))
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)
