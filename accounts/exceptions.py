"""Refusals of the account flows, each a human sentence."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from common.errors import DomainError


class AccountError(DomainError):
    code = "account_error"
    default_message = gettext_noop("This account request could not be handled.")


class NimTaken(AccountError):
    status = 409
    code = "nim_taken"
    default_message = gettext_noop("An account with this NIM already exists.")


class EmailTaken(AccountError):
    status = 409
    code = "email_taken"
    default_message = gettext_noop("An account with this e-mail address already exists.")


class VerificationLinkExpired(AccountError):
    status = 410
    code = "verification_expired"
    default_message = gettext_noop("This verification link has expired. Ask for a new one below.")


class VerificationLinkInvalid(AccountError):
    status = 400
    code = "verification_invalid"
    default_message = gettext_noop("This verification link is not valid. It may have been changed or cut off.")


class TooManyAttempts(AccountError):
    """Refused by a rate limit before anything is checked; ``retry_after`` seconds until it may be tried."""

    status = 429
    code = "login_limited"

    def __init__(self, *, retry_after: int) -> None:
        minutes = -(-retry_after // 60)
        super().__init__(_(self.default_message) % {"minutes": minutes}, retry_after=retry_after)
        self.retry_after = retry_after


class LoginLocked(TooManyAttempts):
    code = "login_locked"
    default_message = gettext_noop(
        "Too many failed logins for this account. Please try again in %(minutes)d minutes,"
        " or ask the committee to unlock it."
    )


class LoginNetworkLimited(TooManyAttempts):
    code = "login_network_limited"
    default_message = gettext_noop("Too many failed logins from your network. Please try again in %(minutes)d minutes.")


class SignUpNetworkLimited(TooManyAttempts):
    code = "signup_network_limited"
    default_message = gettext_noop("Too many sign-ups from your network. Please try again in %(minutes)d minutes.")
