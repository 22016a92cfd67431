"""Refusals of the account flows, each a human sentence."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from ticketwar.lib.errors import DomainError


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
