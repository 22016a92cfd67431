"""One daemon thread per process, started on first use and again in a forked child.

A thread does not survive ``fork``: a web or Celery pool child inherits the parent's memory,
including the note that its thread runs, but not the thread. The note is the pid it started in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class ProcessThread:
    """``ensure()`` starts ``target`` in a daemon thread unless this process already runs it."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name, self.target = name, target
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def running_here(self) -> bool:
        return self._pid == os.getpid()

    def ensure(self) -> None:
        if self.running_here:  # the hot path: one comparison
            return
        with self._lock:
            if self.running_here:
                return
            self._pid = os.getpid()
        threading.Thread(target=self.target, name=self.name, daemon=True).start()
