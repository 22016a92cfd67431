"""The demo: an admin (admin/admin, development only), the staff roles, a door volunteer
(pintu/pintu, development only) and the event `kuliah-umum`: its claim window and its door open
now, so a claimed ticket can be scanned in at once ("Boleh masuk")."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.roles import DOOR_STAFF, roles_ensure
from events.models import Event

DEMO_SLUG = "kuliah-umum"


class Command(BaseCommand):
    help = (
        "Idempotent demo data: admin/admin, the role groups (door staff, operators, organisers), "
        "pintu/pintu in door staff (development only) and the 500-seat event kuliah-umum."
    )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo creates admin/admin and is refused in production.")
        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True, "full_name": "Admin"}
        )
        if created:
            admin.set_password("admin")
            admin.save(update_fields=["password"])
        # The migration made the groups; ensured again so a flushed database gets them back.
        groups = roles_ensure()
        door, door_created = user_model.objects.get_or_create(
            username="pintu", defaults={"full_name": "Panitia Pintu (demo)"}
        )
        if door_created:
            door.set_password("pintu")
            door.save(update_fields=["password"])
        door.groups.add(groups[DOOR_STAFF])
        now = timezone.now()
        event, made = Event.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={
                "title": "Kuliah Umum: Akal Sehat di Ruang Publik",
                "speaker": "Rocky Gerung",
                "description": "Kuliah umum terbuka untuk mahasiswa. 500 kursi gratis, satu tiket per mahasiswa.",
                "venue": "Aula Gedung Serbaguna",
                "starts_at": now + timedelta(days=7),
                "claim_opens_at": now - timedelta(minutes=1),
                "claim_closes_at": now + timedelta(days=6),
                "capacity": 500,
                "remaining": 500,
                "status": Event.Status.PUBLISHED,
                # The demo's door is open from now (the talk itself is a week away): claim, then scan.
                "door_opens_at": now - timedelta(minutes=1),
            },
        )
        if not made and event.claim_closes_at <= now:
            # An old demo whose window has passed: open it again so the demo works.
            event.starts_at = now + timedelta(days=7)
            event.claim_opens_at = now - timedelta(minutes=1)
            event.claim_closes_at = now + timedelta(days=6)
            event.save(update_fields=["starts_at", "claim_opens_at", "claim_closes_at", "updated_at"])
        if event.door_opens_at is None or event.door_opens_at > now:
            event.door_opens_at = now - timedelta(minutes=1)
            event.save(update_fields=["door_opens_at", "updated_at"])
        self.stdout.write(
            f"demo ready: admin {'created' if created else 'exists'}, door staff pintu "
            f"{'created' if door_created else 'exists'}, event {DEMO_SLUG} "
            f"{'created' if made else 'exists'} ({event.remaining}/{event.capacity} seats left)"
        )
