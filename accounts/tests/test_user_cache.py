"""The logged-in user kept in process memory (accounts/revocation.py) follows every change to the account.

A student who verifies a minute before the opening must be able to claim at once, without
logging out, whichever way the account was verified.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.backends import NimOrEmailBackend

CLAIM = "/api/events/{}/claim/"


@pytest.fixture
def unverified(make_user):
    return make_user(verified=False)


@pytest.fixture
def student_client(unverified):
    client = Client()
    client.force_login(unverified)
    return client


def claim(client: Client, slug: str):
    return client.post(CLAIM.format(slug), content_type="application/json")


@pytest.mark.django_db
def test_claim_is_accepted_right_after_the_verification_link(student_client, unverified, event):
    assert claim(student_client, event.slug).status_code == 403  # the user row is cached now
    token = services.verification_token_make(user=unverified)
    assert student_client.get(reverse("accounts:verify", args=[token])).status_code == 302
    assert claim(student_client, event.slug).status_code == 202


@pytest.mark.django_db
def test_claim_is_accepted_right_after_the_admins_mark_verified(student_client, unverified, event, admin_client):
    assert claim(student_client, event.slug).status_code == 403
    changelist = reverse("admin:accounts_user_changelist")
    done = admin_client.post(changelist, {"action": "mark_verified", "_selected_action": [unverified.pk]}, follow=True)
    assert done.status_code == 200
    unverified.refresh_from_db()
    assert unverified.email_verified_at is not None
    assert claim(student_client, event.slug).status_code == 202


@pytest.mark.django_db
def test_an_admin_deactivating_a_student_logs_them_out_at_once(student_client, unverified, event, admin_client):
    assert student_client.get(reverse("events:list")).context["user"].is_authenticated
    change = reverse("admin:accounts_user_change", args=[unverified.pk])
    form = admin_client.get(change).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        is_active="",
        date_joined_0=unverified.date_joined.strftime("%Y-%m-%d"),
        date_joined_1=unverified.date_joined.strftime("%H:%M:%S"),
        groups=[],
        user_permissions=[],
        email_verified_at_0="",
        email_verified_at_1="",
        last_login_0="",
        last_login_1="",
    )
    assert admin_client.post(change, data).status_code == 302
    assert not student_client.get(reverse("events:list")).context["user"].is_authenticated


@pytest.mark.django_db(transaction=True)
def test_a_read_racing_the_verification_commit_does_not_keep_the_old_row(unverified):
    """A request that loads the user after the UPDATE but before COMMIT reads the old row and
    caches it; the invalidation must run again once the change is committed."""
    backend = NimOrEmailBackend()
    token = services.verification_token_make(user=unverified)
    seen: list[object] = []

    def other_request() -> None:
        try:
            seen.append(backend.get_user(unverified.pk).email_verified_at)
        finally:
            connection.close()

    with transaction.atomic():
        services.student_verify_email(token=token)
        reader = threading.Thread(target=other_request)
        reader.start()
        reader.join()
    assert seen == [None]  # the other request saw (and cached) the row before the commit
    assert backend.get_user(unverified.pk).email_verified_at is not None
