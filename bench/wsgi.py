"""The benchmark host app as a WSGI entry point, configured by environment variables.

    gunicorn -w 2 -k gthread --threads 25 bench.wsgi:app        # or: python -m bench.wsgi --port N

``BENCH_DATABASE_URL`` (required; the tables must exist: ``bench.hostapp.make_app`` creates
them), ``BENCH_KEYS`` (JSON list: the encryption keys the credentials were stored with),
``BENCH_CACHE`` (``simple``, the default, or a ``redis://`` URL), ``BENCH_CACHE_PREFIX``,
``BENCH_DB_POOL`` (SQLAlchemy pool size, default 10).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hostapp import make_app


def cache_config(spec: str, prefix: str = "cwbench:") -> dict[str, Any]:
    """Flask-Caching settings for ``simple`` or a ``redis://`` URL."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": spec, "CACHE_KEY_PREFIX": prefix}
    if spec in ("", "simple"):
        return {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 5000}
    raise ValueError(f"unknown BENCH_CACHE {spec!r}: use 'simple' or a redis:// URL")


def engine_options(database_url: str, pool: int) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        return {}
    return {"pool_size": pool, "max_overflow": pool, "pool_pre_ping": False}


def create_app() -> Any:
    database_url = os.environ["BENCH_DATABASE_URL"]
    pool = int(os.environ.get("BENCH_DB_POOL", "10"))
    return make_app(
        database_url,
        None,
        create=False,
        keys=json.loads(os.environ["BENCH_KEYS"]),
        cache_config=cache_config(
            os.environ.get("BENCH_CACHE", "simple"),
            os.environ.get("BENCH_CACHE_PREFIX", "cwbench:"),
        ),
        config={"SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url, pool)},
    )


app = create_app() if os.environ.get("BENCH_DATABASE_URL") else None


def main() -> int:
    """Serve with werkzeug's threaded server (HTTP/1.1 keep-alive) until SIGTERM."""
    import signal

    from werkzeug.serving import WSGIRequestHandler, make_server

    parser = argparse.ArgumentParser(description="serve the benchmark host app")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    WSGIRequestHandler.log_request = lambda *a, **k: None  # type: ignore[method-assign]
    server = make_server("127.0.0.1", args.port, app or create_app(), threaded=True)

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
