"""Monitoring data kept in PostgreSQL (so health survives a dead Redis)."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """Last sign of life of each Celery worker (written every few seconds by the worker)."""

    hostname = models.CharField(max_length=200, primary_key=True)
    seen_at = models.DateTimeField()
    queues = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "worker heartbeat"

    def __str__(self) -> str:
        return self.hostname
