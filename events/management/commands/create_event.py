"""A published event whose claim window opens now (or in N seconds), for drills and load tests."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from common.errors import DomainError
from events import services
from events.models import Event
from events.selectors import is_valid_slug


class Command(BaseCommand):
    help = "Create a published event: claim window opens now (or in --opens-in seconds) and closes a day later."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--capacity", required=True, type=int)
        parser.add_argument("--opens-in", type=int, default=0, help="seconds until the claim window opens")
        parser.add_argument("--title", default="")
        parser.add_argument("--speaker", default="Pembicara Tamu")
        parser.add_argument("--venue", default="Aula Gedung Serbaguna")

    def handle(self, *args, **options):
        slug = options["slug"]
        capacity = options["capacity"]
        opens_in = options["opens_in"]
        if not is_valid_slug(slug):
            raise CommandError("--slug must be 1-80 letters, digits, hyphens or underscores.")
        if capacity < 1 or capacity > 1_000_000:
            raise CommandError("--capacity must be between 1 and 1000000.")
        if opens_in < 0:
            raise CommandError("--opens-in must be zero or more seconds.")
        if Event.objects.filter(slug=slug).exists():
            raise CommandError(f"An event with slug {slug!r} already exists; pick another slug.")
        opens_at = timezone.now() + timedelta(seconds=opens_in)
        closes_at = opens_at + timedelta(days=1)
        try:
            event = services.event_create(
                slug=slug,
                title=options["title"] or f"Event {slug}",
                speaker=options["speaker"],
                venue=options["venue"],
                starts_at=closes_at + timedelta(hours=1),
                claim_opens_at=opens_at,
                claim_closes_at=closes_at,
                capacity=capacity,
                status=Event.Status.PUBLISHED,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"event {event.slug} created: {event.capacity} seats, claim window "
            f"{timezone.localtime(event.claim_opens_at):%Y-%m-%d %H:%M:%S} - "
            f"{timezone.localtime(event.claim_closes_at):%Y-%m-%d %H:%M:%S} WIB"
        )
