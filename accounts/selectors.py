"""Reads of the accounts app: who holds a NIM or an address against a new sign-up."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

User = get_user_model()


def signup_expired_q(*, now: datetime | None = None) -> Q:
    """Sign-ups that were never verified and whose verification link has expired.

    Such an account holds its NIM and address only until someone signs up with either again
    (services.student_sign_up removes it then): NIMs are sequential, and a script signing a
    cohort up with addresses it cannot read must not lock the real students out. The age is
    counted from the sign-up (``date_joined``), not from the last resent link, so logging in
    and asking for a new link every other day cannot keep a NIM reserved. Staff, superusers
    and anyone holding a ticket are never expired.
    """
    now = now or timezone.now()
    ticket_model = User._meta.get_field("tickets").related_model  # reverse relation: no import of the app above
    return (
        Q(email_verified_at__isnull=True, is_staff=False, is_superuser=False, nim__isnull=False)
        & Q(date_joined__lt=now - timedelta(seconds=settings.EMAIL_VERIFICATION_MAX_AGE))
        & Q(~Exists(ticket_model.objects.filter(user_id=OuterRef("pk"))))
    )


def _nim_q(nim: str) -> Q:
    return Q(nim=nim) | Q(username=nim)


def _email_q(email: str) -> Q:
    return Q(email__iexact=email.strip())


def signup_nim_taken(nim: str) -> bool:
    """Whether an account that a new sign-up may not replace holds ``nim``."""
    return User.objects.filter(_nim_q(nim)).exclude(signup_expired_q()).exists()


def signup_email_taken(email: str) -> bool:
    """Whether an account that a new sign-up may not replace holds ``email`` (any case)."""
    return User.objects.filter(_email_q(email)).exclude(signup_expired_q()).exists()


def signup_expired_holders(*, nim: str, email: str):
    """The expired sign-ups holding ``nim`` or ``email``: a new sign-up for them replaces them."""
    return User.objects.filter(_nim_q(nim) | _email_q(email)).filter(signup_expired_q())
