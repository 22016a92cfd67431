"""Every e-mail leaves through one backend guarded by the "smtp" circuit breaker.

Verification links, password resets, seat offers and alert mails are all sent right after a
commit, often inside a student's request. A dead or hung SMTP server must not turn those
requests into 500s or add ``EMAIL_TIMEOUT`` to each of them: failures are logged (with the
stack trace, so they reach the error log and Sentry), counted, and the breaker stops trying
for a while. ``send_mail`` then returns 0 instead of raising.
"""

from __future__ import annotations

import logging
import os
import uuid

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend
from django.utils import timezone
from prometheus_client import Counter

from .breaker import get_breaker

logger = logging.getLogger("ticketwar.mail")

MAIL_MESSAGES = Counter(
    "ticketwar_mail_messages",
    "E-mail messages handed to the delivery backend, by outcome (sent, failed, skipped: breaker open).",
    ["outcome"],
)


class GuardedEmailBackend(BaseEmailBackend):
    """Wraps the real backend (``EMAIL_DELIVERY_BACKEND``) with the "smtp" breaker."""

    def __init__(self, fail_silently: bool = False, **kwargs) -> None:
        super().__init__(fail_silently=fail_silently)
        self.inner = get_connection(settings.EMAIL_DELIVERY_BACKEND, fail_silently=False, **kwargs)

    def send_messages(self, email_messages) -> int:
        messages = list(email_messages or [])
        if not messages:
            return 0
        breaker = get_breaker("smtp")
        if not breaker.allow():
            MAIL_MESSAGES.labels(outcome="skipped").inc(len(messages))
            logger.error("mail not sent (SMTP circuit open): %s", ", ".join(m.subject for m in messages))
            return 0
        try:
            sent = self.inner.send_messages(messages) or 0
        except Exception:  # refused, timed out, auth: the mail is lost, the request is not
            breaker.record_failure()
            MAIL_MESSAGES.labels(outcome="failed").inc(len(messages))
            logger.exception("mail not sent: %s", ", ".join(m.subject for m in messages))
            return 0
        breaker.record_success()
        MAIL_MESSAGES.labels(outcome="sent").inc(sent)
        return sent


class MailFilesBackend(FileEmailBackend):
    """Development delivery: each mail in a file of its own under ``EMAIL_FILE_PATH``.

    Django's file backend writes all the mails of one connection (a mass mail, a second's worth)
    into one file; one file per mail is easier to find and open.
    """

    def _get_filename(self) -> str:
        return os.path.join(self.file_path, f"{timezone.localtime():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.log")

    def send_messages(self, email_messages) -> int:
        return sum(super(MailFilesBackend, self).send_messages([message]) for message in email_messages or [])
