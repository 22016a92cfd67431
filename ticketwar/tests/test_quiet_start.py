"""Development starts quietly: mails land in files, no avoidable warnings at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

ROOT = settings.BASE_DIR


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"} | env
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_development_writes_mails_to_files():
    result = run(
        "import django; django.setup(); from django.conf import settings;"
        " print(settings.EMAIL_DELIVERY_BACKEND); print(settings.EMAIL_FILE_PATH)",
        TICKETWAR_ENV="development",
        DJANGO_SETTINGS_MODULE="ticketwar.settings",
    )
    backend, path = result.stdout.split()
    assert backend == "common.mail.MailFilesBackend", result.stderr
    assert path.endswith(os.path.join(".data", "mail"))


def test_each_mail_is_a_file_of_its_own(tmp_path):
    from django.core.mail import get_connection, send_mass_mail

    connection = get_connection("common.mail.MailFilesBackend", file_path=str(tmp_path))
    sent = send_mass_mail(
        [("Verifikasi", "Tautan satu", None, ["a@student.itera.ac.id"]), ("Tawaran", "Tautan dua", None, ["b@x"])],
        connection=connection,
    )
    files = sorted(tmp_path.glob("*.log"))
    assert sent == 2 and len(files) == 2
    assert {"Tautan satu" in f.read_text() for f in files} == {True, False}


def test_no_pillow_warning_when_the_barcode_library_loads():
    result = run(
        "import django; django.setup(); import tickets.rendering",
        TICKETWAR_ENV="development",
        DJANGO_SETTINGS_MODULE="ticketwar.settings",
    )
    assert result.returncode == 0, result.stderr
    assert "Pillow" not in result.stdout + result.stderr


def test_the_workers_root_warning_is_silenced_in_development_only():
    check = "import ticketwar.celery; from celery.platforms import check_privileges; check_privileges({'json'})"
    quiet = run(check, TICKETWAR_ENV="development")
    assert "superuser privileges" not in quiet.stderr
    if os.geteuid() == 0:  # the warning exists only for root: where it can be seen, production keeps it
        loud = run(
            check,
            TICKETWAR_ENV="production",
            SECRET_KEY="x" * 40,
            ALLOWED_HOSTS="example.org",
            SITE_URL="https://example.org",
        )
        assert "superuser privileges" in loud.stderr
