"""Blinker signals, sent with the Flask app as sender (as Flask's own signals are).

``change_logged(app, change=row, outcome=dict)``: every step of a change reached ConnectWise.
``change_failed(app, change=row, outcome=dict)``: a step failed (it may be retried later).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

change_logged = _signals.signal("connectwise-change-logged")
change_failed = _signals.signal("connectwise-change-failed")
