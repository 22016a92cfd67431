"""The door's interfaces: the scan page (an installable offline web app), its service worker and
manifest, check-in, the door list with its deltas and figures, and the sync of offline scans.

Thin: each parses its input, calls ``tickets.checkin`` or ``tickets.doorlist``, answers JSON.
Everything here is door staff only (``tickets.can_check_in``) except the manifest, which browsers
fetch without cookies and which holds nothing but names and icons.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache, wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.contrib.staticfiles import finders
from django.core.validators import slug_re
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common import ratelimit
from common.api import json_api
from common.body import json_object
from common.errors import json_error
from common.ratelimit import rate_limit_exempt

from . import checkin, doorlist, selectors
from .exceptions import CheckInBadRequest, CheckInEventRequired, CheckInRateLimited
from .models import REDEEM_ALPHABET, REDEEM_LENGTH

# The contract's login page; a literal so this app does not depend on how accounts names it.
STUDENT_LOGIN_URL = "/accounts/login/"
# A JSON body for a check-in is ~250 bytes; anything far larger is not a scan.
CHECKIN_MAX_BODY_BYTES = 2048
# One sync carries at most this many scans (a phone sends 500 at a time): ~150 bytes each.
SYNC_MAX_SCANS = 1000
SYNC_MAX_BODY_BYTES = 256 * 1024
# A phone whose clock is further off than this has its scan times corrected by the difference
# (seen when it sends the batch); within it, the network's delay would add more error than it removes.
CLOCK_TOLERANCE = timedelta(seconds=5)
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# What the phone keeps for offline use (the service worker's cache): the page's own files.
OFFLINE_ASSETS = (
    "css/base.css",
    "css/scan.css",
    "js/scan.js",
    "js/door_store.js",
    "js/door_decide.js",
    "js/barcode.js",
    "vendor/qr-scanner/qr-scanner.min.js",
    "vendor/qr-scanner/qr-scanner-worker.min.js",
    "vendor/zxing/index.min.js",
    "img/door-192.png",
    "img/door-512.png",
)


def door_staff_required(view: Callable) -> Callable:
    """The door's guard (``tickets.can_check_in``): pages send anonymous visitors to the login
    page (door staff have no admin access, so not the admin's) and show others a 403 page;
    the API answers JSON 401 / 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        is_api = request.path.startswith("/api/")
        if not request.user.is_authenticated:
            if is_api:
                return json_error(401, _("Please log in first."), code="unauthenticated")
            return redirect_to_login(request.get_full_path(), STUDENT_LOGIN_URL)
        if not selectors.may_check_in(request.user):
            if is_api:
                return json_error(403, _("Only door staff can check tickets in."), code="forbidden")
            return render(request, "tickets/scan_forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


# --- the scan page, its service worker and manifest -------------------------------------------


@require_GET
@door_staff_required
def scan_page(request: HttpRequest) -> HttpResponse:
    events = list(selectors.events_for_door())
    doors = [{"event": event, "window": selectors.door_window(event)} for event in events]
    context = {
        "doors": doors,
        "default_event": selectors.door_default_event(events),
        "scan_messages": _scan_messages(),
        "door_config": {
            "checkin": reverse("tickets:api_checkin"),
            "list": reverse("tickets:api_door_list", args=["EVENT"]),
            "sync": reverse("tickets:api_door_sync", args=["EVENT"]),
            "worker": reverse("tickets:scan_worker"),
            "scope": reverse("tickets:scan"),
            "qr_scanner": static("vendor/qr-scanner/qr-scanner.min.js"),
            "zxing": static("vendor/zxing/index.min.js"),
            "user": request.user.get_username(),
            # How the phone tells codes apart offline (tickets/models.py, tickets/checkin.py).
            "redeem_alphabet": REDEEM_ALPHABET,
            "redeem_length": REDEEM_LENGTH,
            "card_pattern": checkin.STUDENT_CARD_RE.pattern,
        },
    }
    response = render(request, "tickets/scan.html", context)
    # The service worker keeps its own copy for offline use; the browser's HTTP cache must not
    # serve a stale page (with another user's name) online.
    response["Cache-Control"] = "no-store"
    return response


@cache
def _assets_version(urls: tuple[str, ...]) -> str:
    """A hash of the offline files' URLs and contents: a new version makes phones fetch them again."""
    digest = hashlib.sha256()
    for name, url in zip(OFFLINE_ASSETS, urls, strict=True):
        digest.update(url.encode())
        path = finders.find(name)
        if path:
            with open(path, "rb") as file:
                digest.update(file.read())
    return digest.hexdigest()[:16]


@never_cache
@require_GET
@door_staff_required
def scan_worker(request: HttpRequest) -> HttpResponse:
    """``/scan/sw.js``: the service worker of the scan page (its scope is ``/scan/``)."""
    urls = tuple(static(name) for name in OFFLINE_ASSETS)
    if settings.DEBUG:
        _assets_version.cache_clear()  # development edits the files in place
    config = {
        "version": _assets_version(urls),
        "page": reverse("tickets:scan"),
        "assets": [*urls, reverse("tickets:scan_manifest")],
    }
    # JSON of our own URLs and a hash, in a JavaScript file (not HTML): nothing to escape.
    context = {"config": mark_safe(json.dumps(config))}  # noqa: S308
    response = render(request, "tickets/scan_sw.js", context, content_type="text/javascript")
    response["Service-Worker-Allowed"] = reverse("tickets:scan")
    return response


@require_GET
def scan_manifest(request: HttpRequest) -> HttpResponse:
    """``/scan/manifest.webmanifest``: lets staff add the scan page to the home screen."""
    manifest = {
        "name": _("ticketwar door"),
        "short_name": _("Door"),
        "description": _("Scan tickets at the door, with or without a connection."),
        "lang": request.LANGUAGE_CODE,
        "start_url": reverse("tickets:scan"),
        "scope": reverse("tickets:scan"),
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0a7d32",
        "icons": [
            {"src": static("img/door-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": static("img/door-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any maskable"},
        ],
    }
    response = JsonResponse(manifest, content_type="application/manifest+json")
    response["Cache-Control"] = "public, max-age=3600"
    return response


def _scan_messages() -> dict[str, str]:
    """The scan page's sentences, translated here so its scripts hold no text of their own."""
    return {
        "admitted": _("Admitted"),
        "admitted_offline": _("Admitted (offline)"),
        "already_admitted": _("Already admitted"),
        "already_detail": _("at %(time)s by %(staff)s"),
        "invalid": _("Invalid ticket"),
        "invalid_detail": _("This code is not a valid ticket (unknown, forged, or given back)."),
        "reason_unknown": _("This code is not a ticket of this event (unknown or forged)."),
        "reason_returned": _("This ticket was given back; it is no longer valid."),
        "reason_card_not_accepted": _("This event does not accept the student card: show the ticket."),
        "reason_card_no_ticket": _("This student holds no ticket for this event."),
        "reason_outside_door_window": _("The scan was made while the door was closed."),
        "wrong_event": _("Wrong event"),
        "wrong_detail": _("This ticket is for: %(event)s"),
        "identity": _("Check the student ID card"),
        "identity_detail": _("Admit only if the card shows this name and NIM: %(holder)s"),
        "identity_confirm": _("ID card matches: admit"),
        "ready": _("Ready to scan"),
        "ready_detail": _("Point the camera at a ticket's QR code, or type its redeem code below."),
        "checking": _("Checking…"),
        "error": _("Could not check this code"),
        "no_connection": _("No connection"),
        "no_connection_offline": _(
            "Decided from the door list on this phone; it is sent to the server when the connection returns."
        ),
        "no_connection_no_list": _(
            "The door list is not on this phone yet: scan again when the connection returns, "
            "or check the name in the lookup."
        ),
        "not_saved": _(
            "This phone could not store the scan, so the ticket is not admitted. Scan again; if it repeats, "
            "scan on another phone."
        ),
        "login_again": _("Log in again"),
        "login_again_detail": _(
            "The server no longer accepts this phone's login. Scans are kept on this phone; log in again to send them."
        ),
        "server_error": _("The server is not answering properly (error %(status)s)."),
        "timeout": _("The server did not answer within %(seconds)s s."),
        "rate_limited": _("Too many invalid codes. Wait %(seconds)s s."),
        "online": _("Online"),
        "offline": _("Offline"),
        "auth": _("Log in again"),
        "waiting": _("%(n)s scans waiting to sync"),
        "waiting_none": _("All scans synced"),
        "list_none": _("No door list on this phone yet."),
        "list_state": _("Door list: %(n)s tickets, updated %(time)s"),
        "list_loading": _("Downloading the door list…"),
        "list_failed": _("The door list could not be downloaded; the phone tries again."),
        "conflict_title": _("Door conflicts"),
        "conflict_line": _("%(holder)s: already admitted at %(time)s by %(device)s (this phone at %(scanned)s)"),
        "conflict_refused": _("%(holder)s: refused afterwards by the server (%(reason)s), scanned at %(scanned)s"),
        "conflict_new": _("Conflict: %(holder)s was already admitted at %(time)s by %(device)s"),
        "lookup_none": _("No active ticket of this event matches."),
        "lookup_admit": _("ID checked: admit"),
        "lookup_admitted": _("already admitted at %(time)s"),
        "lookup_need_list": _("The lookup needs the door list: download it first."),
        "card_hint": _("This event accepts the student card (KTM): scan its barcode."),
        "figures": _("%(admitted)s of %(issued)s admitted · %(per_minute)s per minute"),
        "figures_sync": _("%(waiting)s scans waiting to sync on the phones · %(conflicts)s door conflicts"),
        "figure_phone": _("%(name)s: %(admitted)s admitted, %(waiting)s waiting"),
        "camera_start": _("Start camera"),
        "camera_stop": _("Stop camera"),
        "camera_insecure": _(
            "The camera needs a secure connection: open this page over HTTPS. Type the redeem code meanwhile."
        ),
        "camera_unsupported": _(
            "This browser cannot use a camera here. Use a current Chrome, Firefox or Safari, or type the redeem code."
        ),
        "camera_denied": _(
            "Camera access was refused. Allow the camera for this site in the browser's settings, then try again."
        ),
        "camera_none": _("No camera was found on this device. Type the redeem code instead."),
        "camera_busy": _("The camera is in use by another app. Close it and try again."),
        "camera_failed": _("The camera could not start (%(reason)s). Type the redeem code instead."),
        "empty": _("Type a redeem code first."),
        "choose_event": _("Choose the event at this door first."),
        "door_closed": _("Door not open"),
        "door_open_note": _("Door open %(opens)s – %(closes)s"),
        "door_closed_note": _("Door closed now: open %(opens)s – %(closes)s"),
        "scan_meta": _("Scan #%(n)s at %(time)s"),
    }


# --- the API ------------------------------------------------------------------------------------


def _text(data: dict, name: str, limit: int) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or any(ord(ch) < 32 for ch in value):
        raise CheckInBadRequest(_("%(field)s must be a short text.") % {"field": name})
    return value.strip()


def _token(data: dict, name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not TOKEN_RE.match(value):
        raise CheckInBadRequest(_("%(field)s must be 1 to 64 letters, digits, - or _.") % {"field": name})
    return value


def _method(data: dict) -> str:
    method = data.get("method", "") or ""
    if method not in checkin.METHODS:
        raise CheckInBadRequest(_("method must be one of qr, code, card or lookup."))
    return method


def _code(data: dict) -> str:
    code = data.get("code")
    if not isinstance(code, str) or not code.strip():
        raise CheckInBadRequest(_("The ticket code is missing."))
    if len(code) > checkin.CHECK_IN_MAX_CODE_LENGTH:
        raise CheckInBadRequest(_("This is too long to be a ticket code."))
    return code


def _event_slug(value: Any) -> str:
    if value is None or value == "":
        raise CheckInEventRequired()
    # A slug's characters only: a NUL or a lone surrogate would reach PostgreSQL as an error.
    if not isinstance(value, str) or len(value) > 80 or not slug_re.match(value):
        raise CheckInBadRequest(_("The event must be an event's slug."))
    return value


def _flag(data: dict, name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise CheckInBadRequest(_("%(field)s must be true or false.") % {"field": name})
    return value


def _device(data: dict) -> tuple[str, str]:
    device_id = _token(data, "device_id") or ""
    return device_id, _text(data, "device_name", checkin.DEVICE_NAME_MAX)


def _check_guessing(request: HttpRequest) -> None:
    """Refuse a staff member who used up the invalid-scan budget (``peek``: nothing counted).

    Only ``invalid`` answers count against it (``checkin_invalid``, common/ratelimit.py): a busy
    door scanning hundreds of genuine tickets a minute is never slowed down."""
    used_up = ratelimit.peek(request, "checkin_invalid")
    if used_up is not None and used_up.limited:
        raise CheckInRateLimited(retry_after=used_up.retry_after)


# A busy door scans far more than the general API budget allows; guessing is held by the
# invalid-scan budget instead (``_check_guessing``).
@rate_limit_exempt
@json_api(("POST",), login=True)
@door_staff_required
def api_checkin(request: HttpRequest) -> HttpResponse:
    _check_guessing(request)
    data = json_object(request, max_bytes=CHECKIN_MAX_BODY_BYTES, example='{"code": "ABCD-EFGH", "event": "<slug>"}')
    code = _code(data)
    event_slug = _event_slug(data.get("event"))
    identity_checked = _flag(data, "identity_checked")
    device_id, device_name = _device(data)
    scan = checkin.Scan(nonce=_token(data, "nonce"), device_id=device_id, device_name=device_name, method=_method(data))
    outcome = checkin.ticket_check_in(
        code=code, staff_user=request.user, event_slug=event_slug, identity_checked=identity_checked, scan=scan
    )
    if outcome.result == checkin.CheckIn.INVALID:
        ratelimit.check(request, "checkin_invalid")
    return JsonResponse(outcome.as_dict())


def _waiting(value: Any) -> int:
    try:
        return max(0, min(int(value), 10**6))
    except (TypeError, ValueError):
        return 0


# Every door phone polls it every few seconds, several phones may share one login: outside the
# general API budget (door staff only, and it only reads).
@rate_limit_exempt
@never_cache
@json_api(("GET",), login=True)
@door_staff_required
def api_door_list(request: HttpRequest, slug: str) -> HttpResponse:
    """``GET /api/door/<slug>/list/[?since=<cursor>]``: the door list or its delta, with the figures."""
    event = checkin.door_event(_event_slug(slug))
    device_id, device_name = _device(request.GET)
    now = timezone.now()
    checkin.door_device_seen(
        event=event, device_id=device_id, name=device_name, staff_user=request.user,
        waiting=_waiting(request.GET.get("waiting")), now=now,
    )  # fmt: skip
    since = doorlist.parse_cursor(request.GET.get("since"))
    body = doorlist.door_list(event=event, since=since, device_id=device_id, now=now)
    body["figures"] = doorlist.door_figures(event=event, now=now)
    return JsonResponse(body)


def _epoch_ms(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**14:
        raise CheckInBadRequest(_("%(field)s must be a time in milliseconds since 1970.") % {"field": name})
    return datetime.fromtimestamp(value / 1000, tz=timezone.get_current_timezone())


def _synced_scans(data: dict) -> list[checkin.SyncedScan]:
    scans = data.get("scans")
    if not isinstance(scans, list) or len(scans) > SYNC_MAX_SCANS:
        raise CheckInBadRequest(_("scans must be a list of at most %(n)s scans.") % {"n": SYNC_MAX_SCANS})
    parsed = []
    for item in scans:
        if not isinstance(item, dict):
            raise CheckInBadRequest(_("Each scan must be an object."))
        parsed.append(
            checkin.SyncedScan(
                nonce=_token(item, "nonce", required=True),
                code=_code(item),
                scanned_at=_epoch_ms(item.get("scanned_at"), "scanned_at"),
                method=_method(item),
                identity_checked=_flag(item, "identity_checked"),
            )
        )
    return parsed


@rate_limit_exempt
@json_api(("POST",), login=True)
@door_staff_required
def api_door_sync(request: HttpRequest, slug: str) -> HttpResponse:
    """``POST /api/door/<slug>/sync/``: the scans a phone admitted offline, applied once each."""
    _check_guessing(request)
    data = json_object(request, max_bytes=SYNC_MAX_BODY_BYTES, example='{"device_id": "…", "scans": [...]}')
    device_id = _token(data, "device_id", required=True)
    device_name = _text(data, "device_name", checkin.DEVICE_NAME_MAX)
    scans = _synced_scans(data)
    now = timezone.now()
    offset = now - _epoch_ms(data.get("sent_at"), "sent_at")
    outcomes = checkin.door_sync(
        event_slug=_event_slug(slug), staff_user=request.user, scans=scans, device_id=device_id,
        device_name=device_name, clock_offset=offset if abs(offset) > CLOCK_TOLERANCE else timedelta(0),
        waiting=_waiting(data.get("waiting_after")), now=now,
    )  # fmt: skip
    for outcome in outcomes:
        if outcome.result == checkin.CheckIn.INVALID and outcome.reason == checkin.Reason.UNKNOWN:
            ratelimit.check(request, "checkin_invalid")
    return JsonResponse({"results": [outcome.as_dict() for outcome in outcomes], "server_time": now.isoformat()})
