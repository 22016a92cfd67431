"""Writes of the accounts app: sign-up, e-mail verification and the login limits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django_ratelimit import ALL
from django_ratelimit.core import _get_window, _make_cache_key, _split_rate, get_usage

from common.auth import user_cache_invalidate
from common.ratelimit import RATELIMIT_LIMITED, client_ip, retry_after_seconds
from common.redis import redis_available

from .backends import login_account_lookup
from .exceptions import (
    EmailTaken,
    LoginLocked,
    LoginNetworkLimited,
    NimTaken,
    SignUpNetworkLimited,
    VerificationLinkExpired,
    VerificationLinkInvalid,
)
from .models import LoginThrottle
from .selectors import signup_expired_holders

User = get_user_model()

# A separate salt: a token signed for anything else can never verify an e-mail.
VERIFY_SALT = "accounts.email-verify"


def verification_token_make(*, user) -> str:
    """A signed, timestamped token naming the user AND the address being verified.

    Binding the address means a link mailed to an old address stops working once the
    address changes.
    """
    return signing.TimestampSigner(salt=VERIFY_SALT).sign_object({"u": user.pk, "e": user.email.lower()})


@dataclass(frozen=True)
class TokenPayload:
    user_id: int
    email: str


def verification_token_read(token: str, *, max_age: int | None = None) -> TokenPayload:
    """Decode ``token``; raises VerificationLinkExpired or VerificationLinkInvalid."""
    if not token or len(token) > 512:
        raise VerificationLinkInvalid()
    signer = signing.TimestampSigner(salt=VERIFY_SALT)
    try:
        data = signer.unsign_object(token, max_age=max_age)
    except signing.SignatureExpired:
        raise VerificationLinkExpired() from None
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError):
        raise VerificationLinkInvalid() from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("e"), str):
        raise VerificationLinkInvalid()
    return TokenPayload(user_id=data["u"], email=data["e"])


def verification_email_send(*, user_id: int, base_url: str) -> None:
    """Mail a fresh verification link to the user (call after commit; does network I/O)."""
    user = User.objects.filter(pk=user_id).first()
    if user is None or user.email_verified_at is not None or not user.email:
        return

    link = base_url.rstrip("/") + reverse("accounts:verify", args=[verification_token_make(user=user)])
    hours = settings.EMAIL_VERIFICATION_MAX_AGE // 3600
    context = {"user": user, "link": link, "hours": hours}
    subject = render_to_string("accounts/email/verify_subject.txt", context).strip()
    body = render_to_string("accounts/email/verify_body.txt", context)
    send_mail(subject, body, None, [user.email])


def verification_email_schedule(*, user_id: int, base_url: str) -> None:
    """Send the verification mail once the current transaction commits (never for a rollback)."""
    language = translation.get_language()

    def send() -> None:
        with translation.override(language):
            verification_email_send(user_id=user_id, base_url=base_url)

    transaction.on_commit(send)


SIGNUP_IP_GROUP = "accounts.signup-ip"


def signup_attempt_count(*, request: HttpRequest) -> None:
    """Count a sign-up (a valid form) against the client IP; raises SignUpNetworkLimited.

    ``SIGNUP_LIMIT_IP`` is generous because a whole campus signs up through one NAT address;
    it stops one address from reserving a cohort's NIMs. Counted in Redis; when Redis is
    unavailable it is not applied (fails open).
    """
    if not redis_available():
        return
    usage = get_usage(request, group=SIGNUP_IP_GROUP, key=_ip_key, rate=settings.SIGNUP_LIMIT_IP, increment=True)
    if usage is not None and usage["should_limit"]:
        RATELIMIT_LIMITED.labels(budget="signup_ip").inc()
        raise SignUpNetworkLimited(retry_after=retry_after_seconds(int(usage["time_left"])))


def student_sign_up(*, full_name: str, nim: str, email: str, password: str, base_url: str):
    """Create an unverified student (username = NIM) and mail the verification link.

    An expired, never verified account holding the NIM or the address is removed in the same
    transaction (selectors.signup_expired_q). The unique constraints ``accounts_user_nim_unique``
    and ``accounts_user_email_ci_unique`` decide between two simultaneous sign-ups; the loser
    gets NimTaken / EmailTaken.
    Inputs must already be validated (see forms.SignUpForm).
    """
    user = User(username=nim, nim=nim, email=email.strip().lower(), full_name=full_name.strip())
    user.set_password(password)
    try:
        with transaction.atomic():
            # An expired, never verified sign-up holding this NIM or address gives way. Two
            # sign-ups replacing it at once: the second DELETE waits for the first's row lock,
            # then finds the row gone; the unique constraints refuse its INSERT (NimTaken).
            signup_expired_holders(nim=nim, email=user.email).delete()
            user.save()
            verification_email_schedule(user_id=user.pk, base_url=base_url)
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
        if "email" in constraint:
            raise EmailTaken() from None
        if "nim" in constraint or "username" in constraint:
            raise NimTaken() from None
        raise
    return user


def student_verify_email(*, token: str):
    """Mark the address in ``token`` verified; idempotent for an already verified user.

    Raises VerificationLinkExpired (older than EMAIL_VERIFICATION_MAX_AGE) or
    VerificationLinkInvalid (tampered, unknown user, or the address has changed since).
    """
    payload = verification_token_read(token, max_age=settings.EMAIL_VERIFICATION_MAX_AGE)
    user = User.objects.filter(pk=payload.user_id).first()
    if user is None or user.email.lower() != payload.email:
        raise VerificationLinkInvalid()
    if user.email_verified_at is None:
        students_mark_verified(user_ids=[user.pk])
        try:
            user.refresh_from_db(fields=["email_verified_at"])
        except User.DoesNotExist:
            raise VerificationLinkInvalid() from None  # replaced by a new sign-up meanwhile
    return user


def students_mark_verified(*, user_ids) -> int:
    """Mark these users' addresses verified (link click, admin action); returns how many changed.

    Conditional UPDATE: two clicks at once set the timestamp once. ``update()`` sends no
    signal, so the cached users are dropped here: the student can claim on the next request.
    """
    user_ids = list(user_ids)
    count = User.objects.filter(pk__in=user_ids, email_verified_at__isnull=True).update(
        email_verified_at=timezone.now()
    )
    user_cache_invalidate(*user_ids)
    return count


def student_resend_target(*, user=None, token: str = ""):
    """The user a resend request is for: the logged-in user, or the one named in a
    correctly signed (possibly expired) link. None when neither applies."""
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    if token:
        try:
            payload = verification_token_read(token, max_age=None)
        except (VerificationLinkExpired, VerificationLinkInvalid):
            return None
        return User.objects.filter(pk=payload.user_id, email__iexact=payload.email).first()
    return None


# --- login limits ------------------------------------------------------------------------
#
# Two limits on password guessing, checked before the password (docs/OPERATIONS.md):
# - per account, strict (LOGIN_LIMIT_STUDENT, LOGIN_LIMIT_STAFF attempts, then locked for
#   LOGIN_LOCK_SECONDS), in PostgreSQL so it holds when Redis is down;
# - per client IP, generous (LOGIN_LIMIT_IP failures per window): the campus NAT puts hundreds
#   of students behind one address. Counted in Redis; when Redis is unavailable it is not
#   applied (fails open) and the per-account limit alone protects the accounts.

LOGIN_IP_GROUP = "accounts.login-ip"


@dataclass(frozen=True)
class LoginAttempt:
    """A login attempt the limits let through; ``user_id`` is the account it names, if any."""

    user_id: int | None


def _ip_key(group: str, request: HttpRequest) -> str:
    return client_ip(request)


def _ip_usage(request: HttpRequest, *, increment: bool) -> dict | None:
    if not redis_available():
        return None  # fails open: see above
    return get_usage(request, group=LOGIN_IP_GROUP, key=_ip_key, rate=settings.LOGIN_LIMIT_IP, increment=increment)


def _account_reserve(*, user_id: int, limit: int, now: datetime) -> int | None:
    """Count one attempt against ``user_id``: None if it may go on, else seconds until unlocked."""
    period = settings.LOGIN_LOCK_SECONDS
    recent = Q(last_failure_at__gt=now - timedelta(seconds=period))
    for _attempt in range(3):
        # Conditional UPDATE whose row lock serialises parallel attempts: exactly ``limit`` of
        # a burst of guesses get through, however many arrive at once. Failures older than the
        # lock period are forgotten (the count starts again at one).
        counted = (
            LoginThrottle.objects.filter(user_id=user_id)
            .filter(Q(failures__lt=limit) | ~recent)
            .update(failures=Case(When(recent, then=F("failures") + 1), default=Value(1)), last_failure_at=now)
        )
        if counted:
            return None
        last = list(LoginThrottle.objects.filter(user_id=user_id).values_list("last_failure_at", flat=True)[:1])
        if not last:
            try:
                with transaction.atomic():
                    LoginThrottle.objects.create(user_id=user_id, failures=1, last_failure_at=now)
                return None
            except IntegrityError:
                continue  # a parallel attempt created the row: count against it
        left = (last[0] + timedelta(seconds=period) - now).total_seconds()
        if left > 0:
            return math.ceil(left)
    return None  # the lock ended while we looked: let this attempt through


def login_attempt_begin(*, request: HttpRequest, identifier: str) -> LoginAttempt:
    """Count a login attempt for ``identifier`` (NIM, e-mail or username) before its password
    is checked; raises LoginNetworkLimited or LoginLocked (status 429, ``retry_after``).

    Call ``login_attempt_succeeded`` or ``login_attempt_failed`` once the password is checked.
    Attempts refused here count against nothing (a locked account stays locked for its period
    from the last counted attempt, not from the latest refused one).
    """
    usage = _ip_usage(request, increment=False)
    if usage is not None and usage["count"] >= usage["limit"]:
        RATELIMIT_LIMITED.labels(budget="login_ip").inc()
        raise LoginNetworkLimited(retry_after=retry_after_seconds(int(usage["time_left"])))
    account = (
        User.objects.filter(login_account_lookup(identifier))
        .order_by("id")
        .values("pk", "is_staff", "is_superuser")
        .first()
    )
    if account is None:
        return LoginAttempt(user_id=None)  # no account to lock; the per-IP limit still counts it
    privileged = account["is_staff"] or account["is_superuser"]
    limit = settings.LOGIN_LIMIT_STAFF if privileged else settings.LOGIN_LIMIT_STUDENT
    retry_after = _account_reserve(user_id=account["pk"], limit=limit, now=timezone.now())
    if retry_after is not None:
        RATELIMIT_LIMITED.labels(budget="login_account").inc()
        raise LoginLocked(retry_after=retry_after)
    return LoginAttempt(user_id=account["pk"])


def login_attempt_failed(*, request: HttpRequest, attempt: LoginAttempt) -> None:
    """A wrong password (or unknown name): it counts against the client IP as well."""
    _ip_usage(request, increment=True)


def login_attempt_succeeded(*, attempt: LoginAttempt) -> None:
    """The right password: the account's count starts again (the IP's does not)."""
    if attempt.user_id is not None:
        login_unlock(user_ids=[attempt.user_id])


def login_unlock(*, user_ids) -> int:
    """Forget the failed logins of these accounts (admin action, ``manage.py unlock_login``);
    returns how many had any."""
    return LoginThrottle.objects.filter(user_id__in=list(user_ids), failures__gt=0).update(failures=0)


def login_ip_unlock(*, ip: str) -> None:
    """Forget the failed logins counted against ``ip`` in the current window."""
    rate = settings.LOGIN_LIMIT_IP
    _limit, period = _split_rate(rate)
    cache.delete(_make_cache_key(LOGIN_IP_GROUP, _get_window(ip, period), rate, ip, ALL))
