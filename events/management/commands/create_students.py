"""N verified student accounts for load tests (NIM login), optionally written to a CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError

NIM_LENGTH = 9
BATCH = 2000


class Command(BaseCommand):
    help = (
        "Create N verified students (NIM = prefix + zero-padded counter); --out writes a CSV nim,password. "
        "Existing NIMs are skipped and keep their password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", required=True, type=int)
        parser.add_argument("--prefix", default="9", help="leading digits of every NIM (default 9)")
        parser.add_argument("--password", default="loadtest-pass-2024")
        parser.add_argument("--out", default="", help="CSV file to write (nim,password)")

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            # Verified accounts with one known password: a load-test tool, never for real data.
            raise CommandError(
                "create_students makes verified accounts with a shared password and is refused in production."
            )
        count, prefix, password = options["count"], options["prefix"], options["password"]
        if not prefix.isdigit() or len(prefix) >= NIM_LENGTH:
            raise CommandError(f"--prefix must be 1 to {NIM_LENGTH - 1} digits.")
        room = 10 ** (NIM_LENGTH - len(prefix))
        if count < 1 or count > room - 1:
            raise CommandError(f"--count must be between 1 and {room - 1} with prefix {prefix!r}.")
        if not password:
            raise CommandError("--password must not be empty.")
        nims = [f"{prefix}{n:0{NIM_LENGTH - len(prefix)}d}" for n in range(1, count + 1)]
        # One hash for all: PBKDF2 per user would take minutes for thousands of accounts.
        password_hash = make_password(password)
        user_model = get_user_model()
        created = 0
        for start in range(0, count, BATCH):
            chunk = nims[start : start + BATCH]
            before = user_model.objects.filter(nim__in=chunk).count()
            user_model.objects.bulk_create(
                [user_model.verified_student(nim, password_hash=password_hash) for nim in chunk],
                # Re-running skips NIMs that exist (any unique constraint conflict).
                ignore_conflicts=True,
            )
            created += user_model.objects.filter(nim__in=chunk).count() - before
        if options["out"]:
            path = Path(options["out"])
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["nim", "password"])
                writer.writerows([nim, password] for nim in nims)
        self.stdout.write(
            f"{created} students created, {count - created} already existed"
            + (f"; CSV written to {options['out']}" if options["out"] else "")
        )
