"""A logging handler that keeps ERROR records with a stack trace in monitoring.ErrorLog.

Attached to the root logger in settings.LOGGING, next to the JSON stdout handler: every
unhandled exception (Django's ``django.request``, the JSON error middleware, Celery task
failures) lands on stdout, in Sentry (its logging integration) and here. The handler only
queues the record; monitoring.recorder writes it from its own thread and connection.
"""

from __future__ import annotations

import logging
import os
import traceback

from django.utils import timezone

# Our own flush failures must not feed themselves back into the error log.
_IGNORED_LOGGERS = ("ticketwar.monitoring",)


class ErrorLogHandler(logging.Handler):
    def __init__(self, level: int = logging.ERROR) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_IGNORED_LOGGERS):
            return
        try:
            # The settings' LOGGING builds this handler before the apps are loaded: the recorder
            # (models) and the metrics are imported on the first record instead.
            from . import recorder
            from .metrics import ERRORS_LOGGED

            exc_type = ""
            trace = ""
            if record.exc_info and record.exc_info[0] is not None:
                exc_type = f"{record.exc_info[0].__module__}.{record.exc_info[0].__qualname__}"
                trace = "".join(traceback.format_exception(*record.exc_info))
            elif record.stack_info:
                trace = record.stack_info
            request = getattr(record, "request", None)
            path = getattr(record, "path", None) or getattr(request, "path", "") or ""
            recorder.record_error(
                {
                    "logged_at": timezone.now(),
                    "logger": record.name[:200],
                    "level": record.levelname[:16],
                    "message": record.getMessage()[:5000],
                    "exception_type": exc_type[:200],
                    "traceback": trace[:50_000],
                    "path": str(path)[:500],
                    "process": f"{os.uname().nodename}:{os.getpid()}"[:100],
                }
            )
            ERRORS_LOGGED.labels(logger=record.name.split(".")[0]).inc()
        except Exception:
            self.handleError(record)
