"""Private servers for fault tests: a test may stop and start its own instance at will.

The suite's shared PostgreSQL and Redis (started by ``scripts/test.sh``) must never be stopped,
since other tests use them at the same time. A fault test takes a private server instead: its own
data directory under a fresh temporary directory, its own free loopback port, stopped and thrown
away when the test ends. Register the fixtures with ``pytest_plugins = ["tests.servers"]``.

* :class:`PrivateServer` is the base: ``start()``, ``stop()``, ``running``, ``port``, ``workdir``.
* :class:`PrivateRedis` / the ``private_redis`` fixture: ``redis-server`` without persistence
  (a restart starts empty); ``keys()`` lists what it holds.
* :class:`PrivatePostgres` / the ``private_postgres`` fixture: PostgreSQL from the Debian packages
  (``/usr/lib/postgresql/<version>/bin``). As root, ``initdb`` and ``pg_ctl`` run as the
  ``postgres`` user, which owns the temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

__all__ = [
    "PrivatePostgres",
    "PrivateRedis",
    "PrivateServer",
    "free_port",
    "private_postgres",
    "private_redis",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _missing(what: str) -> None:
    """Skip (or, when the test command requires every service, fail) for a missing program."""
    if os.environ.get("CONNECTWISE_TEST_REQUIRE_SERVICES"):
        pytest.fail(f"{what} is not installed; scripts/test.sh installs it")
    pytest.skip(f"{what} is not installed")


class PrivateServer:
    """A server process owned by one test, on its own loopback port and temporary directory.

    Subclasses implement :meth:`_start` and :meth:`_stop`; ``run_as`` names the system user the
    server's commands run as when the tests run as root (``None``: the current user).
    """

    name = "server"
    run_as: str | None = None

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"cw-{self.name}-"))
        self.running = False
        if self._as_other_user():
            user = pwd.getpwnam(self.run_as or "")
            os.chown(self.workdir, user.pw_uid, user.pw_gid)

    def _as_other_user(self) -> bool:
        return bool(self.run_as) and os.geteuid() == 0

    def command(self, args: Sequence[str], *, timeout: float = 60.0) -> str:
        """Run ``args`` (as ``run_as`` when root); raise with its output when it fails."""
        if self._as_other_user():
            line = " ".join(_quote(a) for a in args)
            args = ["su", self.run_as or "", "-s", "/bin/sh", "-c", line]
        proc = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{self.name}: {' '.join(args)} exited {proc.returncode}: "
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        return proc.stdout

    def start(self) -> None:
        """Start the server and wait until its port answers."""
        self._start()
        self.running = True
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not listen on 127.0.0.1:{self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (it may be started again) and wait until its port is closed."""
        if self.running:
            self._stop()
            self.running = False
        deadline = time.monotonic() + 30
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


class PrivateRedis(PrivateServer):
    """A throw-away ``redis-server`` on loopback, without persistence."""

    name = "redis"

    def __init__(self, executable: str) -> None:
        super().__init__()
        self.executable = executable
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def keys(self) -> list[str]:
        """Every key the server holds (empty after a restart)."""
        import redis

        client = redis.Redis.from_url(self.url, decode_responses=True)
        try:
            return sorted(str(key) for key in client.keys("*"))
        finally:
            client.close()

    def _start(self) -> None:
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the process keeps it
        self._process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def _stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A running Redis only this test uses; it may stop and start it."""
    executable = shutil.which("redis-server")
    if executable is None:
        _missing("redis-server")
    assert executable is not None
    server = PrivateRedis(executable)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def _postgres_bin() -> Path | None:
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


class PrivatePostgres(PrivateServer):
    """A throw-away PostgreSQL cluster: trust authentication, loopback TCP only.

    ``url`` connects as the superuser ``postgres`` to the database ``postgres``; ``stop()``
    uses fast shutdown (open connections are terminated, as in a real outage).
    """

    name = "postgres"
    run_as = "postgres"

    def __init__(self, bindir: Path) -> None:
        super().__init__()
        self.bindir = bindir
        self.datadir = self.workdir / "data"
        self.command(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _start(self) -> None:
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        self.command(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-o",
                options,
                "-l",
                str(self.workdir / "server.log"),
                "-w",
                "start",
            ]
        )

    def _stop(self) -> None:
        self.command(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"]
        )


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running PostgreSQL only this test uses; it may stop and start it."""
    bindir = _postgres_bin()
    if bindir is None:
        _missing("PostgreSQL (pg_ctl)")
    assert bindir is not None
    server = PrivatePostgres(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()
