"""The one guard of the JSON views: allowed methods and, when asked, a logged-in user.

``require_http_methods`` answers an empty 405 that ``JsonErrorMiddleware`` rewrites into a
generic sentence; a JSON view says instead which methods the address answers, with ``Allow``,
and an anonymous visitor gets ``401 not_authenticated``: one wording for every API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from .errors import json_error


def json_api(methods: Sequence[str] = ("GET", "HEAD"), *, login: bool = False) -> Callable:
    """Decorate a JSON view: 405 (with ``Allow``) for other methods, then, with ``login``,
    401 ``not_authenticated`` for anonymous visitors; both as ``{error, code}``."""
    allowed = tuple(methods)
    allow_header = ", ".join(allowed)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in allowed:
                message = _("This address only answers %(methods)s requests.") % {"methods": allow_header}
                response = json_error(405, message, code="method_not_allowed")
                response["Allow"] = allow_header
                return response
            if login and not request.user.is_authenticated:
                return json_error(401, _("Please log in first."), code="not_authenticated")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
