"""Shared by the delivery tests: transport faults, a quick worker, copies on the sandbox."""

from __future__ import annotations

import fnmatch
import threading
from typing import Any

import requests
import urllib3.exceptions

from flask_connectwise.delivery import reference_line
from flask_connectwise.urlpolicy import GuardedAdapter
from flask_connectwise.worker import OutboxWorker, TenantThrottle

TICKET = 12345


class FaultyAdapter(GuardedAdapter):
    """Raises a transport error for chosen requests: the 'never left this machine' faults."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: list[tuple[str, str, Exception]] = []
        self.lock = threading.Lock()

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        path = request.path_url.split("apis/3.0/", 1)[-1].split("?", 1)[0]
        with self.lock:
            for index, (method, pattern, exc) in enumerate(self.plan):
                if request.method == method and fnmatch.fnmatch(path, pattern):
                    del self.plan[index]
                    raise exc
        return super().send(request, *args, **kwargs)


def refused() -> Exception:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def quick_worker(service: Any) -> OutboxWorker:
    """A worker with no backoff and no doubt wait: the injected faults either apply a write
    before dropping its answer or never apply it, so a write in doubt has already landed
    (tests/test_doubt_wait.py covers a server that applies it late)."""
    return OutboxWorker(
        service,
        backoff_base=0.0,
        backoff_cap=0.0,
        throttle=TenantThrottle(rate=1000, burst=1000),
        doubt_seconds=0.0,
    )


def copies_on_sandbox(sandbox: Any, reference: str) -> tuple[int, int]:
    """How many notes and time entries on :data:`TICKET` carry the change's reference line."""
    marker = reference_line(reference)
    notes = sum(marker in n["text"] for n in sandbox.notes(TICKET))
    entries = sum(marker in (e.get("notes") or "") for e in sandbox.time_entries(TICKET))
    return notes, entries
