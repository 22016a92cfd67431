"""A staff account with one or more roles (accounts/roles.py), or new roles for an existing one."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.roles import ADMIN_ROLES, ROLE_NAMES, roles_ensure


class Command(BaseCommand):
    help = (
        "Create a staff account (or update an existing one) in the given roles: door (scan page only, "
        "no admin), operator (monitoring), organiser (events admin). Prints a new random password "
        "unless --password is given; an existing account keeps its password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, action="append", choices=sorted(ROLE_NAMES),
                            help="repeat for several roles")  # fmt: skip
        parser.add_argument("--full-name", default="")
        parser.add_argument("--password", default="")

    def handle(self, *args, **options):
        username = options["username"].strip()
        if not username or "@" in username or username.isdigit():
            # Digits are NIMs and '@' e-mails: the login would look the account up as a student.
            raise CommandError("--username must be a plain name (not a NIM or an e-mail address).")
        roles = [ROLE_NAMES[role] for role in options["role"]]
        user_model = get_user_model()
        with transaction.atomic():
            groups = roles_ensure()
            user, created = user_model.objects.get_or_create(
                username=username, defaults={"full_name": options["full_name"] or username}
            )
            if user.is_student:
                raise CommandError(f"{username} is a student account; staff roles are for staff accounts.")
            password = options["password"] or (secrets.token_urlsafe(12) if created else "")
            if password:
                user.set_password(password)
            # The admin only for roles that work there; door staff log in on /accounts/login/.
            user.is_staff = user.is_staff or any(role in ADMIN_ROLES for role in roles)
            user.is_active = True
            user.save()
            user.groups.add(*(groups[role] for role in roles))
        names = ", ".join(sorted(g.name for g in user.groups.all()))
        self.stdout.write(f"{username} {'created' if created else 'updated'}: roles {names}; admin {user.is_staff}")
        if password and not options["password"]:
            self.stdout.write(f"password: {password}")
