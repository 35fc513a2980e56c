"""Stand-ins for unit tests of the client: a fake ConnectWise address and a private cache."""

from __future__ import annotations

from typing import Any

BASE_URL = "https://cw.example.test"
CODEBASE = "v2025_1/"
API = f"{BASE_URL}/{CODEBASE}apis/3.0"


class DictCache:
    """A codebase cache private to one test."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        self.data[key] = value
        return True
