"""Login and sign-up limits: guessing stays slow and bounded, a correct password gets in.

The rules (numbers in docs/OPERATIONS.md, "Login limits"):

- A browser that has logged in to an account before carries a **device cookie** for it (a
  signed account id and a random nonce, OWASP's "device cookies"). Its attempts are counted on
  that cookie only (``LOGIN_LIMIT_DEVICE`` failures, then it is a stranger again), so failures
  sent from other clients, a rival's included, never hold it back.
- Failures from **other clients** count against the account (or, for a name no account has,
  against a keyed hash of the name: both read the same). The first few are free, then each
  attempt must wait a delay that doubles (2 s, 4 s, ... up to ``LOGIN_LOCK_SECONDS``); an
  attempt inside the delay is refused (429, ``retry_after``) without checking the password.
- **Per client address** failures are only counted: above ``LOGIN_LIMIT_IP`` the address's
  failures get no free attempts. It never refuses an attempt: a thousand students share the
  campus NAT address, and a cliff there would let one of them keep all the others out.
- **Sign-ups** per address: the first ``SIGNUP_LIMIT_IP`` are free, then one every
  ``SIGNUP_SPACING_SECONDS``: slowed, never cut off.

Everything is counted in PostgreSQL (``LoginThrottle``) with one conditional UPDATE per
attempt, made *before* the password is checked, so parallel guesses from several processes get
exactly the tries the rule allows, and it all holds while Redis is down.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from common.ratelimit import RATELIMIT_LIMITED, client_network

from .backends import login_account_lookup
from .exceptions import LoginLocked, SignUpNetworkLimited
from .models import LoginThrottle

User = get_user_model()

# The first delay once the free attempts are used up; each further failure doubles it.
FIRST_DELAY_SECONDS = 2

DEVICE_COOKIE = "tw_device"
# Its own salt: nothing else signed with the SECRET_KEY can pass for a device cookie.
DEVICE_SALT = "accounts.device-cookie"
# A year: the phone a student signed up on is still known on the day of the next war.
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 60 * 60


@dataclass(frozen=True)
class Rule:
    """After the ``n``-th counted attempt a key waits ``delay(n)`` seconds (0 while ``n < free``)."""

    free: int
    first_delay: int
    cap: int
    forget: int  # seconds without a counted attempt after which the count starts again

    def delay(self, n: int) -> int:
        """The SQL in ``_reserve`` computes the same (accounts/tests/test_limits_rule.py drives both)."""
        if n < self.free:
            return 0
        return min(self.first_delay * 2 ** min(n - self.free, 40), self.cap)


def account_rule(*, privileged: bool) -> Rule:
    free = settings.LOGIN_LIMIT_STAFF if privileged else settings.LOGIN_LIMIT_STUDENT
    return Rule(free, FIRST_DELAY_SECONDS, settings.LOGIN_LOCK_SECONDS, settings.LOGIN_FORGET_SECONDS)


def device_rule() -> Rule:
    # No growing delay: after its failures the cookie is simply not trusted until forgotten.
    forget = settings.LOGIN_FORGET_SECONDS
    return Rule(settings.LOGIN_LIMIT_DEVICE, forget, forget, forget)


def signup_rule() -> Rule:
    limit, window = settings.SIGNUP_LIMIT_IP
    spacing = settings.SIGNUP_SPACING_SECONDS
    return Rule(limit, spacing, spacing, window)


# --- counting ------------------------------------------------------------------------------

# One statement decides: it counts the attempt and sets the key's wait only if the key is not
# waiting now (no wait is NULL, not "until now": a parallel attempt whose clock read a moment
# earlier must not see the key waiting). Its row lock serialises parallel attempts (PostgreSQL re-checks the WHERE of a
# waiting UPDATE against the row the first one wrote), so a burst gets exactly the free tries.
# The attempt's number n (written out three times: every SET expression reads the old row) is
# 1 again once the key was quiet for the rule's ``forget`` seconds, and at least ``floor`` + 1.
_RESERVE = """
UPDATE accounts_loginthrottle SET
    attempts = (N),
    last_attempt_at = %(now)s,
    locked_until = CASE WHEN (N) < %(free)s THEN NULL
        ELSE %(now)s + make_interval(secs => LEAST(%(first_delay)s * power(2, LEAST((N) - %(free)s, 40)), %(cap)s)) END
WHERE key = %(key)s AND (locked_until IS NULL OR locked_until <= %(now)s)
RETURNING attempts
""".replace("(N)", "(GREATEST(CASE WHEN last_attempt_at < %(forget_before)s THEN 0 ELSE attempts END, %(floor)s) + 1)")
_COUNT = """
INSERT INTO accounts_loginthrottle (key, user_id, attempts, last_attempt_at) VALUES (%(key)s, NULL, 1, %(now)s)
ON CONFLICT (key) DO UPDATE SET attempts = accounts_loginthrottle.attempts + 1, last_attempt_at = %(now)s
"""


def _reserve(*, key: str, rule: Rule, now: datetime, user_id: int | None = None, floor: int = 0) -> int | None:
    """Count one attempt against ``key``: None if it may go on, else the seconds it must wait.

    ``floor``: count as if at least that many attempts were made already (an address above its
    limit gets no free attempts). Refused attempts count nothing.
    """
    params = {
        "key": key,
        "now": now,
        "forget_before": now - timedelta(seconds=rule.forget),
        "floor": floor,
        "free": rule.free,
        "first_delay": rule.first_delay,
        "cap": rule.cap,
    }
    LoginThrottle.objects.bulk_create([LoginThrottle(key=key, user_id=user_id)], ignore_conflicts=True)
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE, params)
        if cursor.fetchone() is not None:
            return None
        cursor.execute("SELECT locked_until FROM accounts_loginthrottle WHERE key = %s", [key])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] <= now:
        return None  # unlocked meanwhile (an admin, a reset, the clean-up): let it through
    return math.ceil((row[0] - now).total_seconds())


def _count(*, key: str, now: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_COUNT, {"key": key, "now": now})


def _window_key(prefix: str, request: HttpRequest, *, window: int, now: datetime) -> str:
    return f"{prefix}:{client_network(request)}:{int(now.timestamp()) // window}"


def _address_over_limit(request: HttpRequest, now: datetime) -> bool:
    limit, window = settings.LOGIN_LIMIT_IP
    key = _window_key("ip", request, window=window, now=now)
    failures = LoginThrottle.objects.filter(key=key).values_list("attempts", flat=True).first()
    return failures is not None and failures >= limit


# --- device cookies ------------------------------------------------------------------------


def _device_nonce(request: HttpRequest, user_id: int) -> str | None:
    """The nonce of this browser's device cookie if it is valid and names ``user_id``."""
    raw = request.COOKIES.get(DEVICE_COOKIE, "")
    if not raw or len(raw) > 300:
        return None
    try:
        data = signing.loads(raw, salt=DEVICE_SALT, max_age=DEVICE_COOKIE_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and data.get("u") == user_id and isinstance(data.get("n"), str):
        return data["n"]
    return None


def device_cookie_issue(*, request: HttpRequest, response: HttpResponse, user_id: int) -> None:
    """Mark this browser as one ``user_id`` has used: after a login, a sign-up, a verification
    click or a password reset (each proves the password or the mailbox). A cookie that already
    names the account keeps its nonce, and its failures are forgotten."""
    nonce = _device_nonce(request, user_id)
    if nonce is None:
        nonce = secrets.token_urlsafe(16)
    else:
        LoginThrottle.objects.filter(key=f"device:{nonce}").delete()  # trusted again
    response.set_cookie(
        DEVICE_COOKIE,
        signing.dumps({"u": user_id, "n": nonce}, salt=DEVICE_SALT),
        max_age=DEVICE_COOKIE_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


# --- logins ----------------------------------------------------------------------------------

_NIM = re.compile(r"[0-9]{9}")


def _name_key(identifier: str) -> str:
    """The key of a login name no account has: a keyed hash (the table holds no typed names)."""
    normalised = identifier.strip()
    if "@" in normalised:
        normalised = normalised.lower()
    return "name:" + salted_hmac("accounts.login-name", normalised).hexdigest()[:40]


def _looks_like_student(identifier: str) -> bool:
    identifier = identifier.strip()
    if "@" in identifier:
        domain = identifier.rsplit("@", 1)[1].lower()
        return domain in {allowed.lower() for allowed in settings.STUDENT_EMAIL_DOMAINS}
    return _NIM.fullmatch(identifier) is not None


@dataclass(frozen=True)
class LoginAttempt:
    """A login attempt the limits let through, and the key it was counted against."""

    key: str
    user_id: int | None


def login_attempt_begin(*, request: HttpRequest, identifier: str) -> LoginAttempt:
    """Count a login attempt for ``identifier`` (NIM, e-mail or username) before its password
    is checked; raises LoginLocked (429, ``retry_after``) while the name must wait.

    Call ``login_attempt_failed`` or ``login_attempt_succeeded`` once the password is checked.
    Staff, superusers and holders of any role (door staff included) get ``LOGIN_LIMIT_STAFF``;
    a name no account has gets the limit of the role its shape suggests, so that neither the
    answers nor their number tell a rival which names exist.
    """
    now = timezone.now()
    in_a_group = Exists(User.groups.through.objects.filter(user_id=OuterRef("pk")))
    account = (
        User.objects.filter(login_account_lookup(identifier))
        .order_by("id")
        .values("pk", "is_staff", "is_superuser")
        .annotate(in_a_group=in_a_group)
        .first()
    )
    if account is None:
        key, user_id, rule = _name_key(identifier), None, account_rule(privileged=not _looks_like_student(identifier))
    else:
        user_id = account["pk"]
        nonce = _device_nonce(request, user_id)
        if nonce is not None and _reserve(key=f"device:{nonce}", rule=device_rule(), now=now, user_id=user_id) is None:
            return LoginAttempt(key=f"device:{nonce}", user_id=user_id)
        privileged = account["is_staff"] or account["is_superuser"] or account["in_a_group"]
        key, rule = f"account:{user_id}", account_rule(privileged=privileged)
    floor = rule.free - 1 if _address_over_limit(request, now) else 0
    retry_after = _reserve(key=key, rule=rule, now=now, user_id=user_id, floor=floor)
    if retry_after is not None:
        RATELIMIT_LIMITED.labels(budget="login_account").inc()
        raise LoginLocked(retry_after=retry_after)
    return LoginAttempt(key=key, user_id=user_id)


def login_attempt_failed(*, request: HttpRequest, attempt: LoginAttempt) -> None:
    """A wrong password (or unknown name): it counts against the client's address as well."""
    now = timezone.now()
    _limit, window = settings.LOGIN_LIMIT_IP
    _count(key=_window_key("ip", request, window=window, now=now), now=now)


def login_attempt_succeeded(*, attempt: LoginAttempt) -> None:
    """The right password: the count of the key it was made on starts again.

    A login on a known device leaves the account's count alone: the owner logging in on their
    phone must not hand a rival guessing from elsewhere a fresh set of free attempts.
    """
    LoginThrottle.objects.filter(key=attempt.key).delete()


def login_unlock(*, user_ids) -> int:
    """Forget the failed logins of these accounts and their devices (admin action,
    ``manage.py unlock_login``, a password reset); returns how many accounts had any."""
    user_ids = list(user_ids)
    locked = (
        LoginThrottle.objects.filter(user_id__in=user_ids, key__startswith="account:", attempts__gt=0)
        .values("user_id")
        .distinct()
        .count()
    )
    LoginThrottle.objects.filter(user_id__in=user_ids).delete()
    return locked


def login_throttles_forget() -> int:
    """Delete the rows that no longer hold anything back (the beat, hourly); returns how many."""
    now = timezone.now()
    horizon = now - timedelta(seconds=max(settings.LOGIN_FORGET_SECONDS, settings.SIGNUP_LIMIT_IP[1]))
    quiet = Q(last_attempt_at__lt=horizon) | Q(last_attempt_at__isnull=True)
    waiting = Q(locked_until__gt=now)
    deleted, _ = LoginThrottle.objects.filter(quiet & ~waiting).delete()
    return deleted


# --- sign-ups --------------------------------------------------------------------------------


def signup_attempt_count(*, request: HttpRequest, now: datetime | None = None) -> None:
    """Count a sign-up (a valid form) against the client's address; raises SignUpNetworkLimited
    (429, ``retry_after`` of a few seconds) when the address must wait for its next one."""
    now = now or timezone.now()
    rule = signup_rule()
    key = _window_key("signup", request, window=rule.forget, now=now)
    retry_after = _reserve(key=key, rule=rule, now=now)
    if retry_after is not None:
        RATELIMIT_LIMITED.labels(budget="signup_ip").inc()
        raise SignUpNetworkLimited(retry_after=retry_after)
