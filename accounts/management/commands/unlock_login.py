"""Unlock a login locked by too many failed attempts: an account, or a client IP address.

For when the admin itself cannot be reached (the only superuser is locked out), or when the
campus NAT address hit the per-IP limit.
"""

from __future__ import annotations

import ipaddress

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.backends import login_account_lookup


class Command(BaseCommand):
    help = "Forget the failed logins of an account (NIM, e-mail or username) or of a client IP (--ip)."

    def add_arguments(self, parser):
        parser.add_argument("identifier", nargs="?", help="NIM, e-mail or username of the account")
        parser.add_argument("--ip", help="client IP address whose failed logins to forget")

    def handle(self, *args, **options):
        identifier, ip = options["identifier"], options["ip"]
        if not identifier and not ip:
            raise CommandError("Name an account (NIM, e-mail or username) or give --ip ADDRESS.")
        if ip:
            try:
                ip = str(ipaddress.ip_address(ip.strip()))
            except ValueError:
                raise CommandError(f"{ip!r} is not an IP address.") from None
            services.login_ip_unlock(ip=ip)
            self.stdout.write(f"Failed logins from {ip} forgotten.")
        if identifier:
            user = get_user_model().objects.filter(login_account_lookup(identifier)).order_by("id").first()
            if user is None:
                raise CommandError(f"No account named {identifier!r}.")
            services.login_unlock(user_ids=[user.pk])
            self.stdout.write(f"Account {user.username} unlocked.")
