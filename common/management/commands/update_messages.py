"""``manage.py update_messages``: refresh every Indonesian catalog from the code, then compile.

One command with one set of options, so a developer and the test that catches a string
without a translation (ticketwar/tests/test_translations.py) collect the same strings. Each
app with a ``locale/`` folder gets its own strings; the project templates and common go
to the project's ``locale/`` (settings.LOCALE_PATHS). The compiled ``.mo`` files are committed,
so a fresh clone needs no gettext tools to run; this command does (Debian package gettext).
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand

# Folders with no string a person reads in the product (tests assert on strings, not show them).
IGNORED = [".venv/*", ".git/*", ".data/*", "staticfiles/*", "docs/*", "deploy/*", "loadtests/*", "tools/*", "*/tests/*"]
LANGUAGES = ["id"]  # English is the source language: it needs no catalog


class Command(BaseCommand):
    help = "Update the Indonesian catalogs from the code and templates, then compile them."

    def add_arguments(self, parser):
        parser.add_argument("--no-compile", action="store_true", help="Only update the .po files.")

    def handle(self, *args, no_compile: bool = False, **options):
        verbosity = options.get("verbosity", 1)
        call_command(
            "makemessages",
            locale=LANGUAGES,
            ignore_patterns=IGNORED,
            no_obsolete=True,
            no_location=True,
            verbosity=verbosity,
        )
        if not no_compile:
            call_command("compilemessages", locale=LANGUAGES, ignore_patterns=IGNORED, verbosity=verbosity)
