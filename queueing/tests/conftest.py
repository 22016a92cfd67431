"""Helpers shared by the queue tests."""

from __future__ import annotations

import time

import pytest


def bulk_students(count: int, *, prefix: str = "q") -> list:
    """``count`` verified students created in one INSERT (one password hash shared by all)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    user_model = get_user_model()
    password = make_password("s3cret-pass!")
    now = timezone.now()
    stamp = time.monotonic_ns() % 10**6
    users = [
        user_model(
            username=f"{prefix}{stamp}{i:05d}",
            nim=f"{prefix}{stamp}{i:05d}",
            email=f"{prefix}{stamp}{i:05d}@student.itera.ac.id",
            full_name=f"Mahasiswa {i}",
            email_verified_at=now,
            password=password,
        )
        for i in range(count)
    ]
    return user_model.objects.bulk_create(users)


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition not met"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{message} within {timeout} s")


@pytest.fixture
def enqueue():
    """``enqueue(user, event)``: the real enqueue service, returning the entry."""
    from queueing.services import queue_enqueue

    def run(user, event):
        return queue_enqueue(user=user, event_slug=event.slug)[0]

    return run
