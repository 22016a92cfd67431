"""Celery interfaces of the accounts app: tiny, each calling a service."""

from __future__ import annotations

from celery import shared_task

from .limits import login_throttles_forget
from .revocation import feed_prune


@shared_task(name="accounts.forget_login_throttles", ignore_result=True)
def forget_login_throttles() -> int:
    """Delete the login-limit rows that hold nothing back any more."""
    return login_throttles_forget()


@shared_task(name="accounts.prune_revocations", ignore_result=True)
def prune_revocations() -> int:
    """Delete the revocation-feed entries nothing can use any more."""
    return feed_prune()
