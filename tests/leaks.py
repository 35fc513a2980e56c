"""Canary secrets and the log handler that catches them (docs/security.md's leak scan)."""

from __future__ import annotations

import logging
import uuid


class Canaries:
    """Secrets that must never show up anywhere; unique per test session."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:12]
        self.public_key = f"CANARYpub{tag}"
        self.private_key = f"CANARYpriv{tag}"
        self.client_id = f"CANARYcid{tag}"

    def all(self) -> tuple[str, ...]:
        return (self.public_key, self.private_key, self.client_id)

    def find_in(self, text: str) -> list[str]:
        """The canaries in ``text``, in any letter case (a server may echo them changed)."""
        low = text.lower()
        return [c for c in self.all() if c.lower() in low]


class LeakCatcher(logging.Handler):
    """Keeps the text of every log record: message, extras and exception."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        extras = {k: v for k, v in vars(record).items() if k not in ("msg", "args")}
        self.texts.append(f"{message} {extras!r} {record.exc_text or ''}")
        if record.exc_info and record.exc_info[1] is not None:
            self.texts.append(repr(record.exc_info[1]) + str(record.exc_info[1]))
