"""Upstream economy: what the ticket field costs ConnectWise, in a real browser.

    python bench/economy.py [--searches 100] [--key-delay 80]

In headless Chromium (/usr/bin/chromium; never downloaded), on the test host app's page with a
TicketSearchField: type "printer" at 80 ms per key and count the searches that reach the
sandbox (target 1); clear the box and type it again within the cache time (target 0); then open
the page in a fresh browser context (no page-side cache) and type it once more (the server's
cache answers: target 0). The baseline is the number of keystrokes (one search per key without
debounce or caches). Then 100 searches of one tenant with distinct texts, sequentially over
HTTP: TCP connections opened to the sandbox (keep-alive; target 1).

Refinement (flask_connectwise/refine.py), with the server's cache emptied before each: "prin"
answered completely (fewer tickets than the page), then "ter" typed at 80 ms per key, in the
browser and as one HTTP search per key ("print", "printe", "printer"): target 0 calls for the
refinement. "p" answered truncated (a full page; over HTTP, the widget asks from 2 letters),
then "printer" typed: it still leads to a call (target at least 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Http,
    machine,
    progress,
    progress_done,
    search_queries,
    table,
    verdict,
    write_result,
)
from flask_connectwise.sandbox import Sandbox

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WORD = "printer"


def sandbox_searches(sandbox: Any) -> int:
    return sum(1 for r in sandbox.requests if r.method == "GET" and r.path == "service/tickets")


def browser_run(site: str, sandbox: Any, key_delay: int) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(10000)
            to_app: list[str] = []
            page.on(
                "request",
                lambda req: to_app.append(req.url) if "/tickets/search" in req.url else None,
            )
            page.goto(f"{site}/voice")
            box = page.locator("#ticket")
            listbox = page.locator("#ticket-listbox")
            sandbox.clear_requests()

            box.press_sequentially(WORD, delay=key_delay)
            expect(listbox).to_be_visible()
            page.wait_for_timeout(400)  # past the debounce: nothing else on its way
            out["first"] = {
                "app_requests": len(to_app),
                "sandbox_searches": sandbox_searches(sandbox),
            }
            progress(f"browser: first typing -> {out['first']}")

            box.fill("")
            expect(listbox).to_be_hidden()
            before_app, before_sb = len(to_app), sandbox_searches(sandbox)
            box.press_sequentially(WORD, delay=key_delay)
            expect(listbox).to_be_visible()
            page.wait_for_timeout(400)
            out["again_same_page"] = {
                "app_requests": len(to_app) - before_app,
                "sandbox_searches": sandbox_searches(sandbox) - before_sb,
            }
            progress(f"browser: again, same page -> {out['again_same_page']}")
            context.close()

            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(10000)
            fresh: list[str] = []
            page.on(
                "request",
                lambda req: fresh.append(req.url) if "/tickets/search" in req.url else None,
            )
            page.goto(f"{site}/voice")
            before_sb = sandbox_searches(sandbox)
            page.locator("#ticket").press_sequentially(WORD, delay=key_delay)
            expect(page.locator("#ticket-listbox")).to_be_visible()
            page.wait_for_timeout(400)
            out["again_new_page"] = {
                "app_requests": len(fresh),
                "sandbox_searches": sandbox_searches(sandbox) - before_sb,
            }
            progress(f"browser: again, new page -> {out['again_new_page']}")
            context.close()
        finally:
            browser.close()
            progress_done()
    out["keystrokes"] = len(WORD)
    return out


def empty_server_cache(app: Any) -> None:
    from flask_connectwise.current import state

    with app.app_context():
        state(app).search.cache.clear()


def http_search(http: Any, query: str) -> list[Any]:
    from tests.hosts import TENANT_A

    path = f"/api/admin/tenant/{TENANT_A}/connectwise/tickets/search?q={quote(query)}"
    status, body, _ = http.request("GET", path)
    if status != 200:
        raise RuntimeError(f"search answered {status}")
    found = json.loads(body)
    return list(found["tickets"] if isinstance(found, dict) else found)


def refine_http_run(site: str, app: Any, sandbox: Any, key_delay: int) -> dict[str, Any]:
    """One HTTP search per key (no debounce, no page cache): what only the server saves."""
    http = Http(site)
    out: dict[str, Any] = {}
    for first, typed in (
        ("prin", ("print", "printe", WORD)),
        ("p", ("pr", "pri", "prin", "print", "printe", WORD)),
    ):
        empty_server_cache(app)
        sandbox.clear_requests()
        shown = len(http_search(http, first))
        before = sandbox_searches(sandbox)
        for text in typed:
            time.sleep(key_delay / 1000)
            http_search(http, text)
        out[first] = {
            "first_tickets": shown,
            "first_calls": before,
            "keys": len(typed),
            "refinement_calls": sandbox_searches(sandbox) - before,
        }
        progress(f"refine over HTTP: after {first!r} -> {out[first]}")
    progress_done()
    http.close()
    return out


def refine_browser_run(site: str, app: Any, sandbox: Any, key_delay: int) -> dict[str, Any]:
    """In the browser: "prin" answered, then "ter" typed; "p" answered (over HTTP: the widget
    asks from 2 letters), then "printer" typed on a fresh page."""
    from playwright.sync_api import expect, sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for first in ("prin", "p"):
                empty_server_cache(app)
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(10000)
                page.goto(f"{site}/voice")
                box, listbox = page.locator("#ticket"), page.locator("#ticket-listbox")
                sandbox.clear_requests()
                if first == "p":
                    http = Http(site)
                    shown = len(http_search(http, "p"))
                    http.close()
                    rest = WORD
                else:
                    box.press_sequentially(first, delay=key_delay)
                    expect(listbox).to_be_visible()
                    page.wait_for_timeout(400)
                    shown = listbox.locator("[role=option]").count()
                    rest = WORD[len(first) :]
                before = sandbox_searches(sandbox)
                box.press_sequentially(rest, delay=key_delay)
                expect(listbox).to_be_visible()
                page.wait_for_timeout(400)
                out[first] = {
                    "first_tickets": shown,
                    "first_calls": before,
                    "typed": rest,
                    "refinement_calls": sandbox_searches(sandbox) - before,
                }
                progress(f"refine in the browser: after {first!r} -> {out[first]}")
                context.close()
        finally:
            browser.close()
            progress_done()
    return out


def unrelated_queries(sandbox: Any, count: int) -> list[str]:
    """``count`` distinct texts of which none holds another: each reaches ConnectWise (a text
    holding a completely answered one would be refined from its answer)."""
    from flask_connectwise.conditions import search_text

    kept: list[str] = []
    out: list[str] = []
    for query in search_queries(sandbox, count * 20):
        folded = search_text(query).casefold()
        if any(k in folded or folded in k for k in kept):
            continue
        kept.append(folded)
        out.append(query)
        if len(out) == count:
            break
    return out


def connections_run(site: str, app: Any, sandbox: Any, searches: int) -> dict[str, Any]:
    from tests.hosts import TENANT_A

    with app.app_context():
        app.extensions["test_cw"].service.forget_client(TENANT_A)  # a new client: a new pool
    sandbox.clear_requests()
    http = Http(site)
    prefix = f"/api/admin/tenant/{TENANT_A}/connectwise/tickets/search?q="
    queries = unrelated_queries(sandbox, searches)
    for i, query in enumerate(queries):
        status, _, _ = http.request("GET", prefix + quote(query))
        if status != 200:
            raise RuntimeError(f"search answered {status}")
        if i % 10 == 0 or i == len(queries) - 1:
            progress(f"connections: {i + 1}/{len(queries)} searches")
    progress_done()
    http.close()
    return {
        "searches": len(queries),
        "sandbox_searches": sandbox_searches(sandbox),
        "connections_opened": sandbox.connections_opened,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=100)
    parser.add_argument("--key-delay", type=int, default=80, help="ms per key")
    parser.add_argument("--skip-browser", action="store_true", help="only the connection count")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)

    import logging

    from tests.field_app import make_field_app, serve

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    sandbox = Sandbox().start()
    workdir = Path(tempfile.mkdtemp(prefix="cw-economy-"))
    app = make_field_app(f"sqlite:///{workdir / 'host.db'}", sandbox)
    try:
        with serve(app) as site:
            browser = None if args.skip_browser else browser_run(site, sandbox, args.key_delay)
            refine_http = refine_http_run(site, app, sandbox, args.key_delay)
            refine_browser = (
                None
                if args.skip_browser
                else refine_browser_run(site, app, sandbox, args.key_delay)
            )
            conns = connections_run(site, app, sandbox, args.searches)
    finally:
        with app.app_context():
            app.extensions["test_db"].engine.dispose()
        sandbox.stop()

    result = {
        "key_delay_ms": args.key_delay,
        "browser": browser,
        "refine_http": refine_http,
        "refine_browser": refine_browser,
        "connections": conns,
    }
    path = write_result("economy", result, args.out)
    m = machine()
    print(f"\nUpstream economy — {m['cpus']} CPUs, {m['cpu_model']}, Chromium headless")
    rows = []
    if browser:
        k = browser["keystrokes"]
        for key, label, target in (
            ("first", f'type "{WORD}" at {args.key_delay} ms/key', 1),
            ("again_same_page", "type it again, same page", 0),
            ("again_new_page", "type it again, new page", 0),
        ):
            got = browser[key]["sandbox_searches"]
            rows.append(
                [label, k, browser[key]["app_requests"], got, f"{target}: {verdict(got, target)}"]
            )
    for how, runs in (("browser", refine_browser), ("HTTP, 1 search per key", refine_http)):
        if not runs:
            continue
        for first, target in (("prin", 0), ("p", 1)):
            run = runs[first]
            state = "complete" if first == "prin" else "truncated"
            got = run["refinement_calls"]
            ok = verdict(got, target) if target == 0 else ("met" if got >= 1 else "MISSED")
            rows.append(
                [
                    f"{how}: {first!r} answered {state} ({run['first_tickets']} tickets), "
                    f"then on to {WORD!r}",
                    run.get("keys", len(run.get("typed", ""))),
                    "-",
                    got,
                    f"{'≥' if target else ''}{target}: {ok}",
                ]
            )
    got = conns["connections_opened"]
    rows.append(
        [
            f"{conns['searches']} searches, one tenant: TCP connections",
            conns["searches"],
            conns["searches"],
            f"{conns['sandbox_searches']} calls / {got} conn",
            f"1: {verdict(got, 1)}",
        ]
    )
    print(
        table(
            rows,
            ["what", "baseline (1 per key / search)", "to the app", "to the sandbox", "target"],
        )
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
