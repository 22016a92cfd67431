"""Log in with a NIM, a campus e-mail or (staff) a username."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


class NimOrEmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not username or password is None:
            return None
        username = username.strip()
        user_model = get_user_model()
        lookup = Q(email__iexact=username) if "@" in username else Q(nim=username) | Q(username=username)
        user = user_model._default_manager.filter(lookup).order_by("id").first()
        if user is None:
            # Same cost as a real check, so timing does not reveal which accounts exist.
            user_model().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
