"""Old home of the outbox worker, kept importable: see :mod:`flask_connectwise.outbox.worker`.

Here :class:`OutboxWorker` and :func:`outbox_counts` also take the old
:class:`~flask_connectwise.service.ConnectWiseService` (``state(app).service``).
"""

from __future__ import annotations

from typing import Any

from .outbox import Outbox
from .outbox import OutboxWorker as _OutboxWorker
from .outbox.worker import RunSummary, TenantThrottle
from .service import ConnectWiseService

__all__ = ["OutboxWorker", "RunSummary", "TenantThrottle", "outbox_counts"]


def _outbox(source: Outbox | ConnectWiseService) -> Outbox:
    return source.outbox if isinstance(source, ConnectWiseService) else source


class OutboxWorker(_OutboxWorker):
    """:class:`flask_connectwise.outbox.OutboxWorker`, given an ``Outbox`` or the old service."""

    def __init__(self, service: Outbox | ConnectWiseService, **options: Any) -> None:
        super().__init__(_outbox(service), **options)


def outbox_counts(service: Outbox | ConnectWiseService) -> dict[str, int]:
    """Changes per state (see :meth:`Outbox.counts`)."""
    return _outbox(service).counts()
