from __future__ import annotations

import json

import pytest
from django.urls import reverse


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "heading"), [("id", "Acara"), ("en", "Events")])
def test_list_renders_in_both_languages(client, make_event, language, heading):
    event = make_event()
    make_event(status="draft", title="Hidden draft")
    client.cookies["django_language"] = language
    response = client.get(reverse("events:list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"<h1>{heading}</h1>" in html
    assert event.title in html
    assert "Hidden draft" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "button"), [("id", "Klaim tiket saya"), ("en", "Claim my ticket")])
def test_detail_renders_in_both_languages(client, event, student, language, button):
    client.force_login(student)
    client.cookies["django_language"] = language
    response = client.get(reverse("claims:event", args=[event.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert button in html
    assert "WIB" in html
    assert "<script>" not in html and " onclick=" not in html
    config = json.loads(html.split('id="event-config" type="application/json">')[1].split("</script>")[0])
    assert config["api_url"] == f"/api/events/{event.slug}/"
    assert config["claim_url"] == f"/api/events/{event.slug}/claim/"
    assert config["event"]["status"] == "open"


@pytest.mark.django_db
def test_detail_shows_start_time_in_wib(client, make_event):
    from datetime import UTC, datetime

    event = make_event(starts_at=datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    client.cookies["django_language"] = "en"
    html = client.get(reverse("claims:event", args=[event.slug])).content.decode()
    assert "19:00 WIB" in html


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["nope", "a" * 200, "%00", "bad%20slug"])
def test_detail_unknown_slug_is_404(client, slug):
    assert client.get(f"/events/{slug}/").status_code == 404


@pytest.mark.django_db
def test_pages_wrong_method(client, event):
    assert client.post(reverse("events:list")).status_code == 405
    assert client.post(reverse("claims:event", args=[event.slug])).status_code == 405


@pytest.mark.django_db
def test_unverified_student_sees_notice_on_detail(client, make_user, event):
    client.force_login(make_user(verified=False))
    client.cookies["django_language"] = "en"
    html = client.get(reverse("claims:event", args=[event.slug])).content.decode()
    assert "only students who verified their campus e-mail can claim a ticket" in html
