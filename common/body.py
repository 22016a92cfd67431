"""The JSON body of an API request, parsed in one place.

Every JSON endpoint that reads a body calls ``json_object``: a body that is not a JSON object
(not JSON, not UTF-8, nested thousands deep, an array, null) is a 400, one larger than the
endpoint's budget or Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` a 413, both as the usual
``{error, code}`` through ``DomainError``. Never a 500: ``json.loads`` raises RecursionError
on deep nesting and Django raises RequestDataTooBig on a large body.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, RawPostDataException
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .errors import DomainError

logger = logging.getLogger("ticketwar.errors")

# The API's bodies are a few fields ({"join": true}, {"code": "..."}): 16 KiB is plenty.
DEFAULT_MAX_BYTES = 16 * 1024


class BadJson(DomainError):
    status = 400
    code = "bad_json"
    default_message = gettext_noop("Send a JSON object.")


class BodyTooLarge(DomainError):
    status = 413
    code = "too_large"
    default_message = gettext_noop("The request is too large.")


def json_object(request: HttpRequest, *, max_bytes: int = DEFAULT_MAX_BYTES, example: str = "") -> dict[str, Any]:
    """The body as a dict, or raise BadJson/BodyTooLarge. An empty body is an empty object.

    ``example`` (e.g. ``{"join": true}``) is shown in the error so the client sees what to send.
    """
    hint = _("Send a JSON object like %(example)s.") % {"example": example} if example else None
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    try:
        if declared > max_bytes:
            raise BodyTooLarge()
        try:
            raw = request.body
        except RequestDataTooBig:
            raise BodyTooLarge() from None
        except RawPostDataException:  # a form body, already parsed as such (not JSON)
            raise BadJson(hint) from None
        if len(raw) > max_bytes:
            raise BodyTooLarge()
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # ValueError covers bad JSON and bad UTF-8
            raise BadJson(hint) from None
        if not isinstance(data, dict):
            raise BadJson(hint)
    except DomainError as error:
        # The client's mistake: a warning, never an error with a stack trace (nor a Sentry event).
        logger.warning("bad request body: %s", error.code, extra={"path": request.path, "bytes": declared})
        raise
    return data
