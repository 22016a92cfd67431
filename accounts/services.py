"""Writes of the accounts app: sign-up and e-mail verification (the limits: limits.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from . import revocation
from .exceptions import (
    EmailTaken,
    NimTaken,
    VerificationLinkExpired,
    VerificationLinkInvalid,
)
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
    signal, so the change is recorded in the revocation feed here, in the same transaction:
    every process drops its copy and the student can claim on the next request.
    """
    user_ids = list(user_ids)
    with transaction.atomic():
        count = User.objects.filter(pk__in=user_ids, email_verified_at__isnull=True).update(
            email_verified_at=timezone.now()
        )
        if count:
            revocation.users_changed(user_ids=user_ids)
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
