"""Unlock a login: forget the failed logins of an account, for when the admin itself cannot be
reached (the only superuser has to wait). Client addresses are never locked (accounts/limits.py)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import limits
from accounts.backends import login_account_lookup


class Command(BaseCommand):
    help = "Forget the failed logins of an account (NIM, e-mail or username)."

    def add_arguments(self, parser):
        parser.add_argument("identifier", help="NIM, e-mail or username of the account")

    def handle(self, *args, **options):
        identifier = options["identifier"]
        user = get_user_model().objects.filter(login_account_lookup(identifier)).order_by("id").first()
        if user is None:
            raise CommandError(f"No account named {identifier!r}.")
        limits.login_unlock(user_ids=[user.pk])
        self.stdout.write(f"Account {user.username} unlocked.")
