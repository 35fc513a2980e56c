"""A burst of new connections waits for the sandbox; none is dropped or reset (issue 11, item 15).

Under ``bench/load.py`` about one log-change in 1,150 came back "retrying" with "The connection
broke before ConnectWise answered": the client opened a new connection while the sandbox (then
listening with ``socketserver``'s backlog of 5) was slow to accept, the kernel dropped the SYN
(connected after the 1 s SYN retransmission) and then reset the connection. Here nothing accepts
until ``start()``, so every connection of the burst must wait in the listen queue.
"""

from __future__ import annotations

import threading
import time

from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.errors import ConnectWiseError
from flask_connectwise.retry import NO_RETRY
from flask_connectwise.sandbox import Sandbox

BURST = 64
TICKET = 12345


def test_a_burst_of_new_connections_is_queued_not_dropped_or_reset() -> None:
    sandbox = Sandbox()  # bound and listening; nothing accepts before start()
    created: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def post(i: int) -> None:
        # One client per thread: each note goes out on a connection of its own.
        client = ConnectWiseClient(
            **sandbox.credentials,
            codebase=sandbox.codebase,
            retry=NO_RETRY,
            connect_timeout=2.5,  # a SYN dropped twice is only sent again after 3 s
            timeout=20.0,
        )
        try:
            note = client.add_note(TICKET, f"burst note {i}")
            with lock:
                created.append(note.id)
        except ConnectWiseError as exc:
            with lock:
                errors.append(exc.message)
        finally:
            client.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(BURST)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.5)  # past the first SYN retransmission: a dropped SYN is dropped again
        sandbox.start()
        for thread in threads:
            thread.join(30)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert len(set(created)) == BURST
        texts = [n["text"] for n in sandbox.notes(TICKET)]
        assert sorted(t for t in texts if t.startswith("burst note ")) == sorted(
            f"burst note {i}" for i in range(BURST)
        )
    finally:
        sandbox.stop()
