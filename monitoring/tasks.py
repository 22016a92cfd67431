"""Periodic monitoring work (its beat entries: monitoring/schedule.py) and alert delivery."""

from __future__ import annotations

import logging
import os

from celery import shared_task
from celery.signals import worker_process_shutdown
from django.conf import settings
from prometheus_client import multiprocess

from . import alerts, notify, services

logger = logging.getLogger("ticketwar.monitoring")


@shared_task(name="monitoring.tasks.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> int:
    return len(alerts.evaluate_alerts())


@shared_task(name="monitoring.tasks.sample_metrics", ignore_result=True)
def sample_metrics() -> None:
    services.metric_sample_take()


@shared_task(name="monitoring.tasks.prune", ignore_result=True)
def prune() -> dict:
    return services.monitoring_prune()


@shared_task(bind=True, name=notify.DELIVER_WEBHOOK_TASK, ignore_result=True, max_retries=None)
def deliver_alert_webhook(self, payload: dict) -> None:
    """Retry an alert webhook with exponential backoff (delay, 2x, 4x... up to the limit)."""
    try:
        notify.deliver_webhook(payload)
    except notify.WebhookFailed as exc:
        if self.request.retries >= settings.ALERT_WEBHOOK_MAX_RETRIES:
            logger.error("alert webhook given up after %s retries: %s", self.request.retries, exc)
            return
        countdown = settings.ALERT_WEBHOOK_RETRY_DELAY * 2**self.request.retries
        raise self.retry(exc=exc, countdown=countdown) from exc


@worker_process_shutdown.connect
def _mark_process_dead(pid=None, **kwargs) -> None:
    """Multiprocess metrics: drop the live gauges of a Celery child that exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
