"""Celery interfaces of the waiting list: tiny, each calling services."""

from __future__ import annotations

from celery import shared_task

from .services import waitlist_expire_offers, waitlist_fill_all


@shared_task(name="waitlist.tick", ignore_result=True)
def tick() -> dict:
    """Close expired offers (each seat passed on), then offer every free seat to the lists."""
    return {"expired": waitlist_expire_offers(), "offered": waitlist_fill_all()}
