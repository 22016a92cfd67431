"""Sign-up against a hostile public: NIMs reserved and never verified, scripted sign-ups,
NIMs in other scripts' digits, and one clear error per field."""

from __future__ import annotations

import heapq
import random
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts import limits, services
from accounts.exceptions import SignUpNetworkLimited
from accounts.models import LoginThrottle
from accounts.tests.test_signup import BAD_INPUT, race_signups, signup_data  # the sign-up tests' helpers

User = get_user_model()
SIGNUP = reverse("accounts:signup")


def squat(nim: str, email: str, *, hours_ago: float):
    """An unverified sign-up made ``hours_ago`` (a script using an address it cannot read)."""
    user = User(username=nim, nim=nim, email=email, full_name="Bot")
    user.set_password("Squat-Squat-1!")
    user.save()
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(hours=hours_ago))
    return user


@pytest.mark.django_db
def test_expired_unverified_signup_gives_way_to_the_real_student(client, settings):
    assert settings.EMAIL_VERIFICATION_MAX_AGE == 48 * 3600
    squatter = squat("121140001", "bot1@student.itera.ac.id", hours_ago=49)
    response = client.post(SIGNUP, signup_data())
    assert response.status_code == 302
    assert not User.objects.filter(pk=squatter.pk).exists()
    assert User.objects.get(nim="121140001").email == "siti.121140001@student.itera.ac.id"


@pytest.mark.django_db
def test_expired_unverified_signup_gives_its_address_back(client):
    squatter = squat("121140002", "siti.121140001@student.itera.ac.id", hours_ago=49)
    response = client.post(SIGNUP, signup_data(email="Siti.121140001@student.itera.ac.id"))
    assert response.status_code == 302
    assert not User.objects.filter(pk=squatter.pk).exists()
    assert User.objects.filter(nim="121140001").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("hours_ago", [1, 47])
def test_a_sign_up_whose_link_still_works_keeps_its_nim(client, hours_ago):
    holder = squat("121140001", "bot1@student.itera.ac.id", hours_ago=hours_ago)
    response = client.post(SIGNUP, signup_data())
    assert response.status_code == 200
    assert "nim" in response.context["form"].errors
    assert User.objects.filter(pk=holder.pk).exists()


@pytest.mark.django_db
def test_verified_staff_and_ticket_holding_accounts_never_expire(client, make_user, event):
    from tools.testing import issue_ticket

    old = timezone.now() - timedelta(days=30)
    verified = make_user(nim="121140001")
    holder = squat("121140003", "bot3@student.itera.ac.id", hours_ago=24 * 30)
    User.objects.filter(pk=holder.pk).update(email_verified_at=timezone.now())
    issue_ticket(event_id=event.pk, user_id=holder.pk)
    User.objects.filter(pk=holder.pk).update(email_verified_at=None)  # unverified later by hand
    User.objects.filter(pk__in=[verified.pk, holder.pk]).update(date_joined=old)
    assert "nim" in client.post(SIGNUP, signup_data()).context["form"].errors
    assert "nim" in client.post(SIGNUP, signup_data(nim="121140003")).context["form"].errors
    assert User.objects.filter(pk__in=[verified.pk, holder.pk]).count() == 2


@pytest.mark.django_db
def test_link_of_a_replaced_signup_no_longer_verifies(client):
    squatter = squat("121140001", "bot1@student.itera.ac.id", hours_ago=49)
    token = services.verification_token_make(user=squatter)
    assert client.post(SIGNUP, signup_data()).status_code == 302
    assert Client().get(reverse("accounts:verify", args=[token])).status_code in (400, 410)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_signups_replacing_one_expired_account_make_one_account():
    squat("121140099", "bot@student.itera.ac.id", hours_ago=49)
    results = race_signups("121140099")
    assert sorted(results) == [200] * 7 + [302]
    assert User.objects.filter(nim="121140099").count() == 1
    assert User.objects.get(nim="121140099").email.startswith("race")


@pytest.mark.django_db
def test_signups_from_one_address_are_slowed_not_cut_off(settings):
    settings.SIGNUP_LIMIT_IP = (3, 3600)
    settings.SIGNUP_SPACING_SECONDS = 2
    for i in range(3):
        data = signup_data(nim=f"12114010{i}", email=f"s{i}@student.itera.ac.id")
        assert Client().post(SIGNUP, data).status_code == 302
    # Past the free ones, each next sign-up from the address waits its turn: seconds, not an hour.
    campus = Client()
    response = campus.post(SIGNUP, signup_data(nim="121140109", email="s9@student.itera.ac.id"))
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 2
    assert "Saat ini banyak pendaftaran datang dari jaringan Anda" in response.content.decode()
    assert not User.objects.filter(nim="121140109").exists()
    # Form errors (typos) do not count; another address is not affected.
    assert Client().post(SIGNUP, signup_data(nim="1211401")).status_code == 200
    elsewhere = Client(REMOTE_ADDR="10.9.9.9")
    assert elsewhere.post(SIGNUP, signup_data(nim="121140107", email="s7@student.itera.ac.id")).status_code == 302
    # The student presses the button again when the countdown ends: in.
    LoginThrottle.objects.filter(key__startswith="signup:127.0.0.1:").update(locked_until=timezone.now())
    response = campus.post(SIGNUP, signup_data(nim="121140109", email="s9@student.itera.ac.id"))
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_thousand_signups_in_an_evening_from_one_address():
    """A campus signs up behind one NAT address: a thousand students over an evening, a hundred
    of them in the first minutes after the announcement. Each one who is asked to wait presses
    the button again when told; every one is in, none waits long (default settings)."""
    rng = random.Random(7)
    start = timezone.now()
    arrivals = sorted([rng.uniform(0, 120) for _ in range(100)] + [rng.uniform(0, 4 * 3600) for _ in range(900)])
    request = RequestFactory().post(SIGNUP)
    tries = [(arrival, arrival) for arrival in arrivals]  # (when, arrived): the clock only moves on
    heapq.heapify(tries)
    waits = []
    while tries:
        when, arrived = heapq.heappop(tries)
        try:
            limits.signup_attempt_count(request=request, now=start + timedelta(seconds=when))
        except SignUpNetworkLimited as refusal:
            assert refusal.retry_after <= settings.SIGNUP_SPACING_SECONDS
            heapq.heappush(tries, (when + refusal.retry_after, arrived))
        else:
            waits.append(when - arrived)
    assert len(waits) == 1000
    assert max(waits) <= 60


@pytest.mark.django_db
def test_signup_works_while_redis_is_down(redis_server, settings):
    settings.SIGNUP_LIMIT_IP = (1, 3600)
    settings.SIGNUP_SPACING_SECONDS = 1
    redis_server.kill()
    for i in range(3):
        data = signup_data(nim=f"12114020{i}", email=f"r{i}@student.itera.ac.id")
        assert Client(REMOTE_ADDR=f"10.0.2.{i}").post(SIGNUP, data).status_code == 302
    assert User.objects.filter(nim__startswith="12114020").count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "nim",
    [
        "١٢١١٤٠٠٠١",  # Arabic-Indic digits
        "۱۲۱۱۴۰۰۰۱",  # Extended Arabic-Indic (Persian) digits
        "１２１１４０００１",  # fullwidth digits
        "१२११४०००१",  # Devanagari digits
    ],
)
def test_nim_in_other_digits_gets_a_clear_form_error(client, nim):
    response = client.post(SIGNUP, signup_data(nim=nim))
    assert response.status_code == 200
    assert response.context["form"].errors["nim"] == ["NIM terdiri dari tepat 9 angka (0-9)."]
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "field"), BAD_INPUT)
def test_signup_shows_one_error_per_field(client, overrides, field):
    response = client.post(SIGNUP, signup_data(**overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert len(errors[field]) == 1
    assert all(len(messages) == 1 for messages in errors.values()), errors
    # One list a field in error (a 5000-character password is too long in both password fields).
    html = response.content.decode()
    assert html.count('<ul class="errorlist') == len(errors)
