"""Page-only middleware, left out of the JSON API's hot path.

At the opening every student's claim and polls go to /api/; none of them shows a flash message
or can be framed (they are JSON). Django's MessageMiddleware built a message storage for each
of them and XFrameOptionsMiddleware stamped each JSON answer; these subclasses do it for pages
only. (Locale negotiation stays on the API: its errors are sentences in the student's language.)
"""

from __future__ import annotations

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
