"""Page-only middleware, left out of the JSON API's hot path.

At the opening every student's claim and polls go to /api/; none of them shows a flash message,
can be framed or runs a script (they are JSON, sent with ``nosniff``). Django's MessageMiddleware
built a message storage for each of them, XFrameOptionsMiddleware stamped each JSON answer and
django-csp built the pages' policy string for each; these subclasses do it for pages only. (Locale
negotiation stays on the API: its errors are sentences in the student's language.)
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.middleware.clickjacking import XFrameOptionsMiddleware

API_PREFIX = "/api/"


class PageMessageMiddleware(MessageMiddleware):
    """Flash messages for pages; /api/ views never add or show one."""

    def process_request(self, request):
        if not request.path.startswith(API_PREFIX):
            super().process_request(request)

    def process_response(self, request, response):
        if hasattr(request, "_messages"):
            return super().process_response(request, response)
        return response


class PageXFrameOptionsMiddleware(XFrameOptionsMiddleware):
    """X-Frame-Options on everything a browser could frame, not on JSON."""

    def process_response(self, request, response):
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return super().process_response(request, response)


class PageCSPMiddleware(CSPMiddleware):
    """The site's Content-Security-Policy (settings.CONTENT_SECURITY_POLICY) on everything a
    browser renders as a document; on JSON a fixed policy that lets it load and run nothing and
    be framed by nobody (OWASP's advice for APIs), stricter and without building the page
    policy's string, which cost about a tenth of a logged-in API read."""

    JSON_POLICY = "default-src 'none'; frame-ancestors 'none'"

    def process_response(self, request, response):
        if response.get("Content-Type", "").startswith("application/json"):
            response.setdefault("Content-Security-Policy", self.JSON_POLICY)
            return response
        return super().process_response(request, response)
