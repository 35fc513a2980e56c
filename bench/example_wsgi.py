"""The example app (``example_app``) as the load benchmark serves it under gunicorn.

    gunicorn -w 2 -k gthread --threads 25 bench.example_wsgi:app

The example app reads its own environment variables (``DATABASE_URL``, ``REDIS_URL``,
``SECRET_KEY``, ``CONNECTWISE_ENCRYPTION_KEYS``, ``CONNECTWISE_DEMO``, ``EXAMPLE_INSTANCE_PATH``:
see :mod:`example_app.config`). It has no variable for what a benchmark against the local
sandbox also needs, so these are given to :func:`example_app.create_app` as overrides:

- ``CONNECTWISE_ALLOW_LOOPBACK_HTTP=True`` (the tenants' base URL is the sandbox on 127.0.0.1;
  outside demo mode the example app refuses loopback URLs);
- ``CACHE_KEY_PREFIX`` from ``BENCH_CACHE_PREFIX`` (each run starts with an empty Redis cache);
- ``SQLALCHEMY_ENGINE_OPTIONS`` with ``pool_size`` = ``max_overflow`` = ``BENCH_DB_POOL`` (one
  connection per gunicorn thread; the example app's default pool holds 5 + 10).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def overrides(environ: dict[str, str] | os._Environ[str] | None = None) -> dict[str, Any]:
    """The ``create_app`` overrides the benchmark adds to the example app's own environment."""
    env = os.environ if environ is None else environ
    config: dict[str, Any] = {"CONNECTWISE_ALLOW_LOOPBACK_HTTP": True, "CONNECTWISE_DEMO": False}
    if env.get("BENCH_CACHE_PREFIX"):
        config["CACHE_KEY_PREFIX"] = env["BENCH_CACHE_PREFIX"]
    pool = int(env.get("BENCH_DB_POOL") or 0)
    if pool and not env.get("DATABASE_URL", "").startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_pre_ping": True,  # the example app's own setting
            "pool_size": pool,
            "max_overflow": pool,
        }
    return config


def create_app() -> Any:
    from example_app import create_app as create_example_app

    return create_example_app(overrides())


app = create_app() if os.environ.get("DATABASE_URL") else None
