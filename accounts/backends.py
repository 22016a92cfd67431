"""Log in with a NIM, a campus e-mail or (staff) a username; the logged-in user from process memory."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q

from . import revocation


def login_account_lookup(identifier: str) -> Q:
    """Which account a login name means: an address (any case), else a NIM or a username.

    One home for the rule: the backend checks the password of this account and the login
    limits count failures against it, whichever of its names was typed.
    """
    identifier = identifier.strip()
    return Q(email__iexact=identifier) if "@" in identifier else Q(nim=identifier) | Q(username=identifier)


class NimOrEmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not username or password is None:
            return None
        user_model = get_user_model()
        user = user_model._default_manager.filter(login_account_lookup(username)).order_by("id").first()
        if user is None:
            # Same cost as a real check, so timing does not reveal which accounts exist.
            user_model().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        """The session's user: this process's copy while it is in sync with the revocation feed
        (no query), else the row (accounts/revocation.py)."""
        return revocation.user_get(user_id, lambda: super(NimOrEmailBackend, self).get_user(user_id))
