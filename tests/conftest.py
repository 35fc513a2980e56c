"""Shared fixtures: canary secrets, a fresh codebase cache, clients for unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.retry import RetryPolicy

# pytest_plugins = ["flask_connectwise.testing"]  # enabled once the sandbox lands

BASE_URL = "https://cw.example.test"
CODEBASE = "v2025_1/"
API = f"{BASE_URL}/{CODEBASE}apis/3.0"


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
        return [c for c in self.all() if c in text]


@pytest.fixture(scope="session")
def canaries() -> Canaries:
    return Canaries()


class DictCache:
    """A codebase cache private to one test."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        self.data[key] = value
        return True


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(canaries: Canaries, sleeps: list[float]) -> Iterator[Any]:
    made: list[ConnectWiseClient] = []

    def make(**overrides: Any) -> ConnectWiseClient:
        options: dict[str, Any] = {
            "base_url": BASE_URL,
            "company_id": "acme",
            "public_key": canaries.public_key,
            "private_key": canaries.private_key,
            "client_id": canaries.client_id,
            "codebase": CODEBASE,
            "codebase_cache": DictCache(),
            "retry": RetryPolicy(max_attempts=4, base=0.1, cap=1.0, deadline=30.0),
            "sleep": sleeps.append,
        }
        options.update(overrides)
        client = ConnectWiseClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
