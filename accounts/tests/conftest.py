"""Fixtures of the accounts tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_password_hasher(settings):
    """Passwords hashed with one MD5 round instead of a million PBKDF2 rounds (~0.3 s each on
    the 2-core machine): for tests that check hundreds of passwords. Hashes made before still
    verify (PBKDF2 stays on the list)."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
