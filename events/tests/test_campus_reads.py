"""A thousand anonymous visitors behind the campus NAT's one address read the event: none is
refused. The event reads are protected by their cost (cached), not by a per-address budget."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_a_thousand_anonymous_visitors_behind_one_address_never_see_a_429(event, settings, django_assert_num_queries):
    settings.RATELIMIT_API_ANON = "10/m"  # the anonymous budget as shipped, still in force elsewhere
    visitors = [Client() for _ in range(1000)]  # one address: 127.0.0.1, as behind the NAT
    statuses = set()
    for visitor in visitors:
        statuses.add(visitor.get(f"/events/{event.slug}/").status_code)
    # The page's refresh, three rounds of it (15 s of every visitor polling every 5 s), and the list.
    for _round in range(3):
        for visitor in visitors:
            response = visitor.get(f"/api/events/{event.slug}/")
            statuses.add(response.status_code)
    statuses.add(visitors[0].get("/api/events/").status_code)
    assert statuses == {200}
    # What keeps the open door cheap: a read served from the cache asks PostgreSQL nothing.
    with django_assert_num_queries(0):
        assert Client().get(f"/api/events/{event.slug}/").status_code == 200
    # The anonymous budget still holds the rest of the API for the address.
    assert [visitors[0].get("/api/ping/").status_code for _ in range(11)] == [200] * 10 + [429]
