"""Refusals of the account flows, each a human sentence."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

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
    """Refused by a limit before anything is checked; ``retry_after`` seconds until it may be tried."""

    status = 429
    code = "login_limited"

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(_(self.default_message) % {"wait": wait_text(retry_after)}, retry_after=retry_after)
        self.retry_after = retry_after


def wait_text(seconds: int) -> str:
    """``40 seconds``, ``3 minutes``: a wait as a person says it (minutes rounded up)."""
    if seconds < 60:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = -(-seconds // 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


class LoginLocked(TooManyAttempts):
    """The same sentence whether an account has the name or not: it tells a rival nothing."""

    code = "login_locked"
    default_message = gettext_noop(
        "Too many failed logins for this name. Please try again in %(wait)s, log in on a phone or"
        " computer where you logged in before, or reset your password."
    )


class SignUpNetworkLimited(TooManyAttempts):
    code = "signup_network_limited"
    default_message = gettext_noop(
        "Many sign-ups are coming from your network right now. Please try again in %(wait)s."
    )
