"""The per-app lookup: what the extension keeps for each app, and the current app's copy.

Routes, fields, the admin, the CLI and the testing plugin reach the services through
:func:`state`, so none of them imports :mod:`flask_connectwise.extension` back and the package
has no import circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from flask import Flask, current_app

from .members import MemberCheck
from .models import Models
from .outbox import Outbox
from .search import TicketSearch
from .service import ConnectWiseService
from .tenants import Tenants

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .extension import ConnectWise

#: What a caller asks the host's ``authorize`` hook for.
Action = Literal["use", "configure"]
#: The key of the extension's state in ``app.extensions``.
EXTENSION_KEY = "connectwise"


class AppState:
    """What the extension keeps per app, in ``app.extensions["connectwise"]``."""

    def __init__(
        self,
        extension: ConnectWise,
        models: Models,
        tenants: Tenants,
        search: TicketSearch,
        outbox: Outbox,
        members: MemberCheck | None = None,
    ) -> None:
        self.extension = extension
        self.models = models
        self.tenants = tenants
        self.search = search
        self.outbox = outbox
        #: The cached member check (exists, active, not an API member).
        self.members = members or MemberCheck(tenants, search.cache, tenants.config)
        #: The three services behind the older one-object API.
        self.service = ConnectWiseService(tenants, search, outbox)
        self._dispatcher: Dispatcher | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        """Starts the delivery of committed changes (``CONNECTWISE_DELIVERY``; see
        :mod:`flask_connectwise.dispatch`): ``dispatcher.submit(change_id).wait(timeout)``."""
        if self._dispatcher is None:
            from .dispatch import create_dispatcher

            self._dispatcher = create_dispatcher(self.outbox.app)
        return self._dispatcher

    @dispatcher.setter
    def dispatcher(self, value: Dispatcher) -> None:
        self._dispatcher = value


def state(app: Flask | None = None) -> AppState:
    """The extension's state for ``app`` (default: the current app)."""
    app = app or current_app
    try:
        found = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "flask-connectwise is not initialised on this app; did you forget to call "
            "cw.init_app(app, db=db)?"
        ) from None
    assert isinstance(found, AppState)
    return found
