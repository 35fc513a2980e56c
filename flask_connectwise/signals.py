"""Blinker signals, sent with the Flask app as sender (as Flask's own signals are).

``change_logged(app, change=row, outcome=dict)``: every step of a change reached ConnectWise.
``change_failed(app, change=row, outcome=dict, final=bool)``: a step failed. ``final=False``:
the change is retried later; ``final=True``: it is marked ``failed`` and no worker retries it
(ConnectWise refused it for good, or it passed the give-up age); the step errors say why.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

change_logged = _signals.signal("connectwise-change-logged")
change_failed = _signals.signal("connectwise-change-failed")
