"""A tiny authenticated HTTP client for the sandbox, shared by the sandbox tests."""

from __future__ import annotations

from typing import Any

import requests

from flask_connectwise.sandbox import Sandbox


class CW:
    """A tiny authenticated client for the sandbox."""

    def __init__(self, sb: Sandbox, codebase: str | None = None) -> None:
        self.sb = sb
        c = sb.credentials
        self.session = requests.Session()
        self.session.auth = (f"{c['company_id']}+{c['public_key']}", c["private_key"])
        self.session.headers.update(
            {
                "clientId": c["client_id"],
                "Accept": "application/vnd.connectwise.com+json; version=2022.1",
            }
        )
        self.codebase = codebase or sb.codebase

    def url(self, path: str) -> str:
        return f"{self.sb.url}/{self.codebase}apis/3.0/{path}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url(path), params=params, timeout=5)

    def post(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.session.post(self.url(path), json=body, timeout=kw.pop("timeout", 5), **kw)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.session.patch(self.url(path), json=body, timeout=5)
