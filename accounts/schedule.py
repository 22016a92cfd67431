"""Beat schedule of the accounts app (merged into the Celery app in ticketwar/celery.py).

Hourly: the login-limit rows of quiet names, devices and addresses are kept a day
(LOGIN_FORGET_SECONDS); clearing them once an hour keeps the table small. The revocation feed's
entries are kept until no cookie they end can still be accepted (accounts/revocation.py).
"""

from __future__ import annotations

SCHEDULE = {
    "accounts-forget-login-throttles": {
        "task": "accounts.forget_login_throttles",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "accounts-prune-revocations": {
        "task": "accounts.prune_revocations",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
