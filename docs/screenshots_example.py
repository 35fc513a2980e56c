"""Take the example app's screenshots in headless Chromium: docs/example-dashboard.png (the
dashboard with the ticket autocomplete open) and docs/example-3cx.png (a 3CX user form).

    python docs/screenshots_example.py            # from the repository root

Runs the example app in demo mode (its own sandbox, a throw-away instance folder) on
127.0.0.1; uses the system's Chromium (/usr/bin/chromium, or $CHROMIUM); never downloads a
browser.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OPERATOR = "operator@contoso.example"


def main(out_dir: Path = ROOT / "docs") -> list[Path]:
    """Serve the demo, take both screenshots, return their paths."""
    from playwright.sync_api import expect, sync_playwright
    from werkzeug.serving import make_server

    from example_app import create_app, demo

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {"CONNECTWISE_DEMO": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/demo.db"},
            instance_path=tmp,
        )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        shots: list[Path] = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1280, "height": 820})
                page.goto(f"{base}/login")
                page.fill("#email", OPERATOR)
                page.fill("#password", demo.DEMO_PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state("load")

                page.goto(f"{base}/admin/?upn=sam.ortiz@contoso.example")
                page.fill("#phone_number", "+1 425 555 0177")
                page.select_option("#voice_routing_policy", "Emergency-Only")
                page.locator("#ticket").press_sequentially("teams voice", delay=40)
                expect(page.locator("#ticket-listbox [role=option]").first).to_be_visible()
                page.keyboard.press("ArrowDown")
                target = out_dir / "example-dashboard.png"
                page.screenshot(path=str(target), full_page=True)
                shots.append(target)

                page.goto(f"{base}/admin/threecx_users/new/")
                page.fill("#extension", "203")
                page.fill("#first_name", "Chris")
                page.fill("#last_name", "Young")
                page.fill("#email", "chris.young@contoso.example")
                page.fill("#outbound_caller_id", "+1 425 555 0100")
                page.locator("#connectwise_ticket").press_sequentially("3CX", delay=40)
                expect(
                    page.locator("#connectwise_ticket-listbox [role=option]").first
                ).to_be_visible()
                page.keyboard.press("ArrowDown")
                target = out_dir / "example-3cx.png"
                page.screenshot(path=str(target), full_page=True)
                shots.append(target)
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
        return shots


if __name__ == "__main__":
    for path in main():
        print(path)
