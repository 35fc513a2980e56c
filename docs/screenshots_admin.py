"""Take the admin screenshots in headless Chromium: docs/admin-credentials.png, docs/admin-change-log.png.

    python docs/screenshots_admin.py            # from the repository root

Runs the sandbox and a test host app (tests/admin_helpers.py) on 127.0.0.1; uses the system's
Chromium (/usr/bin/chromium, or $CHROMIUM); never downloads a browser.
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


def main(out_dir: Path = ROOT / "docs") -> list[Path]:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from flask_connectwise.extension import state
    from flask_connectwise.sandbox import Sandbox
    from tests.admin_helpers import TENANT_A, make_admin_app, seed_credentials

    sandbox = Sandbox(host="127.0.0.1", port=0).start()
    tmp = tempfile.TemporaryDirectory()
    server = None
    try:
        app = make_admin_app(f"sqlite:///{Path(tmp.name) / 'shots.db'}", TESTING=False)
        row_id = seed_credentials(app, TENANT_A, sandbox, defaultTimeMinutes=15)
        with app.app_context():
            service = state(app).service
            service.set_flag(TENANT_A, True, actor="jdoe")
            for ticket, text in (
                (12345, "DID +1 555 0100 moved to ext. 204"),
                (12346, "Teams voice policy set to 'International' for j.smith"),
            ):
                service.log_change(
                    TENANT_A, ticket, text, member="jdoe", hours=0.25, operator="jdoe"
                )
        # one change that fails: its ticket does not exist
        with app.app_context():
            state(app).service.log_change(
                TENANT_A,
                999999,
                "Hunt group 'Sales' gained ext. 230",
                member="jdoe",
                hours=0.25,
                operator="asmith",
            )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        pw = sync_playwright().start()
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        shots = []
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/admin/?as_tenant={TENANT_A}&as_role=admin")
            page.goto(f"{base}/admin/connectwise/credentials/edit/?id={row_id}")
            page.get_by_role("button", name="Test stored credentials").click()
            page.wait_for_load_state()
            target = out_dir / "admin-credentials.png"
            page.screenshot(path=str(target), full_page=True)
            shots.append(target)
            page.set_viewport_size({"width": 1500, "height": 700})
            page.goto(f"{base}/admin/connectwise/change-log/")
            target = out_dir / "admin-change-log.png"
            page.screenshot(path=str(target), full_page=True)
            shots.append(target)
        finally:
            browser.close()
            pw.stop()
        return shots
    finally:
        if server is not None:
            server.shutdown()
        sandbox.stop()
        tmp.cleanup()


if __name__ == "__main__":
    for path in main():
        print(path)
