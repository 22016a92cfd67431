"""The limits' rule (accounts/limits.py): the SQL that counts and the Python that documents it
agree, and what it lets a guesser do in an hour is what docs/OPERATIONS.md says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.limits import Rule, _reserve, account_rule
from accounts.models import LoginThrottle

pytestmark = pytest.mark.django_db

RULES = [Rule(5, 2, 900, 86400), Rule(3, 2, 900, 86400), Rule(5, 86400, 86400, 86400), Rule(100, 2, 2, 3600)]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 12, 15, 60, 101, 500])
def test_the_database_waits_as_long_as_the_rule_says(rule, n):
    """One table of cases drives both twins: ``Rule.delay`` and the UPDATE in ``_reserve``."""
    now = timezone.now()
    key = f"test:{n}"
    assert _reserve(key=key, rule=rule, now=now, floor=n - 1) is None  # this is the n-th attempt
    row = LoginThrottle.objects.get(key=key)
    assert row.attempts == n
    waited = 0 if row.locked_until is None else (row.locked_until - now).total_seconds()
    assert waited == rule.delay(n)
    if rule.delay(n):
        assert _reserve(key=key, rule=rule, now=now + timedelta(seconds=rule.delay(n) - 1)) == 1
        assert _reserve(key=key, rule=rule, now=now + timedelta(seconds=rule.delay(n))) is None


class Guesser:
    """Guesses one key as fast as the limits allow: again the moment a wait ends (any sooner is
    refused unchecked), on a simulated clock."""

    def __init__(self, rule: Rule, *, floor: int = 0) -> None:
        self.rule, self.floor, self.now = rule, floor, timezone.now()

    def checks_in(self, seconds: int) -> int:
        """Password checks the guesser gets in the next ``seconds``."""
        end, checks = self.now + timedelta(seconds=seconds), 0
        while self.now < end:
            retry_after = _reserve(key="test:hour", rule=self.rule, now=self.now, floor=self.floor)
            if retry_after is None:
                checks += 1
                self.now += timedelta(milliseconds=1)  # the wrong password is known at once
            else:
                self.now += timedelta(seconds=retry_after)
        return checks


@pytest.mark.parametrize(("privileged", "first_hour", "next_hours"), [(False, 16, 4), (True, 14, 4)])
def test_guesses_per_hour_on_one_account_are_bounded(privileged, first_hour, next_hours):
    guesser = Guesser(account_rule(privileged=privileged))
    assert guesser.checks_in(3600) == first_hour
    assert [guesser.checks_in(3600) for _ in range(3)] == [next_hours] * 3


def test_an_address_above_its_limit_gets_no_free_attempts():
    rule = account_rule(privileged=False)
    assert Guesser(rule, floor=rule.free - 1).checks_in(3600) == 12


def test_a_quiet_day_forgets_the_count():
    rule = account_rule(privileged=False)
    now = timezone.now()
    for _ in range(rule.free):
        assert _reserve(key="test:quiet", rule=rule, now=now) is None
    assert _reserve(key="test:quiet", rule=rule, now=now) is not None
    later = now + timedelta(seconds=rule.forget + 1)
    assert _reserve(key="test:quiet", rule=rule, now=later) is None
    assert LoginThrottle.objects.get(key="test:quiet").attempts == 1


def test_the_hourly_clean_up_keeps_what_still_holds_something_back(settings):
    from accounts.limits import login_throttles_forget

    now = timezone.now()
    old, later = now - timedelta(seconds=settings.LOGIN_FORGET_SECONDS + 60), now + timedelta(minutes=5)
    LoginThrottle.objects.bulk_create(
        [
            LoginThrottle(key="test:quiet", attempts=3, last_attempt_at=old),
            LoginThrottle(key="test:recent", attempts=3, last_attempt_at=now),
            LoginThrottle(key="test:waiting", attempts=40, last_attempt_at=old, locked_until=later),
            LoginThrottle(key="test:wait-over", attempts=40, last_attempt_at=old, locked_until=old),
        ]
    )
    assert login_throttles_forget() == 2
    assert set(LoginThrottle.objects.values_list("key", flat=True)) == {"test:recent", "test:waiting"}
