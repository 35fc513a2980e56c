"""Blinker signals, sent with the Flask app as sender (as Flask's own signals are).

``change_logged(app, change=row, outcome=dict)``: every step of a change reached ConnectWise.
``change_failed(app, change=row, outcome=dict, final=bool)``: a step failed. ``final=False``:
the change is retried later; ``final=True``: it is marked ``failed`` and no worker retries it
(ConnectWise refused it for good, or it passed the give-up age); the step errors say why.

Two more, for monitoring (``flask_connectwise.metrics`` listens to them):
``connectwise_called(sender, tenant=str|None, method=str, path=str, status=int|None,
error=str|None, duration=float)``: one HTTP call to ConnectWise was answered (``status``) or not
(``error``: the transport error's name); the sender is the :class:`~.tenants.Tenants` of the app
whose tenant client made it (a standalone client is its own sender).
``search_answered(sender, tenant=str, hit=bool)``: a ticket search was answered from the cache
(``hit``) or from ConnectWise; the sender is the app's :class:`~.search.TicketSearch`.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

change_logged = _signals.signal("connectwise-change-logged")
change_failed = _signals.signal("connectwise-change-failed")
connectwise_called = _signals.signal("connectwise-called")
search_answered = _signals.signal("connectwise-search-answered")
