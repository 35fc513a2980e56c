"""Every ``CONNECTWISE_*`` configuration key, its default and what it does.

The configuration table of the docs (``docs/configuration.md``) is generated from
:data:`SETTINGS` (``python -m flask_connectwise.config``); a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CONNECTWISE_ENCRYPTION_KEYS",
        None,
        'Named AES-256 keys, e.g. `["k2:<base64>", "k1:<base64>"]`; the first encrypts, all '
        "decrypt. Required before a secret is stored or read (`flask connectwise keys generate`).",
    ),
    Setting(
        "CONNECTWISE_URL_PREFIX",
        "/api/admin/tenant/<tenant_id>/connectwise",
        "Where the JSON routes are mounted; must contain `<tenant_id>`.",
    ),
    Setting(
        "CONNECTWISE_ALLOWED_HOSTS",
        ("*.myconnectwise.net", "*.connectwisedev.com"),
        "Hosts a tenant's base URL may name (`*.` matches subdomains). Add on-premises hosts here.",
    ),
    Setting(
        "CONNECTWISE_ALLOW_LOOPBACK_HTTP",
        False,
        "Development only: also accept `http://127.0.0.1:<port>` / `http://[::1]:<port>` base URLs "
        "(the sandbox). `True` accepts any port (a warning is logged; prefer "
        "`CONNECTWISE_LOOPBACK_PORTS`); a port or a list of ports accepts only those. Never enable "
        "in production (see below).",
    ),
    Setting(
        "CONNECTWISE_LOOPBACK_PORTS",
        None,
        "The sandbox's port(s), e.g. `[8765]`: with `CONNECTWISE_ALLOW_LOOPBACK_HTTP` on, only "
        "loopback URLs on these ports are accepted. `None`: any port.",
    ),
    Setting(
        "CONNECTWISE_INLINE_WAIT",
        1.0,
        "Seconds the host's commit waits (in total) for the outcome of the changes it recorded. "
        "Delivery runs off the request; an outcome that arrives later is flashed on the "
        "operator's next page (Logging to ticket #12345… meanwhile).",
    ),
    Setting("CONNECTWISE_TIMEOUT", 10.0, "Read timeout of each ConnectWise call, seconds."),
    Setting("CONNECTWISE_CONNECT_TIMEOUT", 5.0, "Connect timeout of each call, seconds."),
    Setting(
        "CONNECTWISE_CHECK_DEADLINE",
        2.0,
        "Seconds the ticket check before submit and a search may take. Past it, or with "
        "ConnectWise down, a ticket typed as a number is accepted unverified (checked at "
        "delivery) and search answers 503 `connectwise_slow`/`connectwise_unavailable`.",
    ),
    Setting(
        "CONNECTWISE_API_VERSION", "2022.1", "Response model version pinned in the `Accept` header."
    ),
    Setting("CONNECTWISE_SEARCH_CACHE_SECONDS", 30, "How long a search answer is reused."),
    Setting(
        "CONNECTWISE_TICKET_FACTS_SECONDS",
        60,
        "How long the check before submit uses what ConnectWise answered to the tenant's "
        "search (company, board, status, closed of each ticket found; same credentials and "
        "company scope) instead of reading the ticket. 0: always read.",
    ),
    Setting(
        "CONNECTWISE_SETTINGS_CACHE_SECONDS",
        5,
        "How long a process remembers a tenant's flag and credentials revision (changes made "
        "in the same process apply at once; other workers see them within this time).",
    ),
    Setting(
        "CONNECTWISE_CLIENT_CACHE_SIZE",
        256,
        "Most tenants whose ConnectWise client (an HTTP session with its open connections and "
        "the decrypted keys) and remembered settings a process keeps; beyond it the least "
        "recently used tenant's client is closed and rebuilt from the database on its next "
        "call. Memory and open sockets stay flat however many tenants there are.",
    ),
    Setting(
        "CONNECTWISE_RATE_LIMIT",
        10.0,
        "Most ConnectWise calls per second delivery makes for one tenant (a token bucket, one "
        "token per call; a 429's `Retry-After` also pauses the tenant). Shared by every "
        "process when there is a Redis (see `CONNECTWISE_RATE_LIMIT_REDIS_URL`), else per "
        "process. ConnectWise counts calls by arrival: in any second up to rate + burst calls "
        "go out, so set the rate about 5 % below what ConnectWise allows the tenant, minus "
        "the burst. The defaults (10 + 5) stay under the ~1,000 calls a minute ConnectWise is "
        "reported to allow.",
    ),
    Setting(
        "CONNECTWISE_RATE_LIMIT_BURST",
        5,
        "Calls one tenant may get at once above the rate. The default lets one log-change's "
        "parallel round (ticket read, note, time entry, status) go at once, so an operator's "
        "change is never held by the limit; 1 spaces every call evenly.",
    ),
    Setting(
        "CONNECTWISE_RATE_LIMIT_REDIS_URL",
        None,
        "Redis holding the per-tenant rate limits (keys `connectwise:rl:<tenant>`, expiring). "
        "`None`: the Flask-Caching `RedisCache`'s Redis when the cache is one, else each process "
        "limits its own calls. A Redis outage falls back to per-process limits (one warning).",
    ),
    Setting("CONNECTWISE_SEARCH_LIMIT", 25, "Most tickets one search returns (at most 100)."),
    Setting(
        "CONNECTWISE_TICKET_URL",
        "{site}/v4_6_release/services/system_io/Service/fv_sr100_request.rsp"
        "?companyName={company}&service_recid={ticket}",
        "Where a ticket number links to in the admin views: `{site}` is the tenant's ConnectWise "
        "site (its base URL without the cloud `api-` prefix), `{company}` its company id, "
        "`{ticket}` the number. `None`: no links.",
    ),
    Setting("CONNECTWISE_NOTE_MAX_LENGTH", 4000, "Longest note text accepted, characters."),
    Setting("CONNECTWISE_MIN_MINUTES", 1, "Shortest time one change may log, minutes."),
    Setting(
        "CONNECTWISE_MAX_MINUTES",
        480,
        "Longest time one change may log, minutes (the field's minutes input and the API's "
        "`hours`/`minutes` are refused above it).",
    ),
    Setting(
        "CONNECTWISE_DEFAULT_TENANT",
        None,
        "The tenant of a single-tenant app: used when no `@cw.current_tenant` hook is registered. "
        "With neither, the ticket field renders nothing and logs a warning once.",
    ),
    Setting(
        "CONNECTWISE_NAME_OTHER_COMPANIES",
        True,
        "A ticket of a company the tenant does not serve is refused naming its company "
        '("Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd"). `False` says "another '
        'company" instead, so an operator typing ticket numbers cannot learn which customer '
        "owns them.",
    ),
    Setting(
        "CONNECTWISE_REQUIRE_MEMBER",
        True,
        "Refuse time entries when the operator has no ConnectWise member (no `current_member`): "
        "the API answers 400 `member_required`, forms log the note and skip the time entry. "
        "`False` bills such time to the API member, as before.",
    ),
    Setting(
        "CONNECTWISE_MEMBER_CACHE_SECONDS",
        300,
        "How long the check of a member (exists, active, not an API member) is reused.",
    ),
    Setting(
        "CONNECTWISE_IMPERSONATE_MEMBERS",
        False,
        "Send each change's note and time entry with the member's own impersonation keys "
        "(`POST system/members/{identifier}/tokens`), so ConnectWise's audit trail names the "
        "technician. Tokens are kept in process memory only, until shortly before they expire; "
        "the status update still uses the tenant's API keys.",
    ),
    Setting(
        "CONNECTWISE_CSRF_HEADER",
        "X-CSRFToken",
        "Header that must carry the CSRF token on state-changing routes.",
    ),
    Setting(
        "CONNECTWISE_REQUIRE_CSRF",
        True,
        "Refuse state-changing requests without a valid CSRF token in the header. Uses Flask-WTF's "
        "token when installed, else the extension's own session token.",
    ),
)

SETTINGS += (
    Setting(
        "CONNECTWISE_ADMIN_VIEWS",
        True,
        "Flask-Admin views added by `init_app(admin=...)`: `True` all, `False` none, or a list of "
        '`"credentials"`, `"flags"`, `"changes"`.',
    ),
    Setting("CONNECTWISE_ADMIN_CATEGORY", "ConnectWise", "Flask-Admin menu category of the views."),
    Setting(
        "CONNECTWISE_CSP_NONCE",
        None,
        "A callable returning the CSP nonce for the ticket field's `<script>`/`<link>` tags; "
        "without it `g.csp_nonce`, then `request.csp_nonce` (Flask-Talisman) is used.",
    ),
)

# Delivery off the request path (flask_connectwise.dispatch).
SETTINGS += (
    Setting(
        "CONNECTWISE_DELIVERY",
        "thread",
        'Who delivers a committed change: `"thread"` (a thread pool in the web process plus a '
        'sweep of due retries; one process, small apps), `"celery"` (a task on the host\'s Celery '
        'app), `"rq"` (a job on the host\'s RQ queue) or `"worker"` (only `flask connectwise '
        "deliver`). The change log is the source of truth in every mode: a lost or duplicated "
        "task never loses or repeats a write.",
    ),
    Setting(
        "CONNECTWISE_DELIVERY_THREADS", 4, 'Threads delivering changes in `"thread"` mode, per app.'
    ),
    Setting(
        "CONNECTWISE_DOUBT_SECONDS",
        60.0,
        "Least wait before a change with a write whose answer never came (a timeout, a dropped "
        "connection) is tried again: ConnectWise may still apply that write, and the retry looks "
        "for it on the ticket first, so it must look only once the write surely landed.",
    ),
    Setting(
        "CONNECTWISE_SWEEP_SECONDS",
        15,
        'How often (seconds) each web process sweeps the changes due for a retry: `"thread"` '
        'mode delivers them (as `flask connectwise deliver` does), `"celery"`/`"rq"` '
        "enqueue them again (also recovering lost messages); `0` turns the sweep off.",
    ),
    Setting(
        "CONNECTWISE_CELERY_APP",
        None,
        '`"celery"` mode: the Celery app (or `"module:attribute"`) the `flask_connectwise.'
        "deliver_change` tasks go to; or call `cw.init_celery(celery_app, app)` (the worker must "
        "call it too, so the task runs in the Flask app's context).",
    ),
    Setting(
        "CONNECTWISE_RQ_QUEUE",
        "connectwise",
        '`"rq"` mode: an `rq.Queue`, `"module:attribute"` naming one, or a queue name on '
        "`CONNECTWISE_RQ_REDIS_URL`.",
    ),
    Setting("CONNECTWISE_RQ_REDIS_URL", None, '`"rq"` mode: the Redis of a queue given by name.'),
    Setting(
        "CONNECTWISE_RQ_APP",
        None,
        '`"rq"` mode: `"module:app"` or `"module:create_app"`, sent with each job so a plain '
        "`rq worker connectwise` can build the Flask app (not needed when the worker pushes an "
        "app context itself).",
    ),
)

DEFAULTS: dict[str, Any] = {s.key: s.default for s in SETTINGS}


def positive_seconds(config: Mapping[str, Any], key: str) -> float:
    """A duration setting in seconds: its value (default from :data:`DEFAULTS`), 0.0 when it
    is 0 or less or not a number (the feature it times is then off)."""
    try:
        value = float(config.get(key, DEFAULTS.get(key, 0)))
    except (TypeError, ValueError):
        return 0.0
    return value if value > 0 else 0.0


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill in every missing ``CONNECTWISE_*`` key."""
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)


def markdown_table() -> str:
    """The configuration table of the docs (``docs/configuration.md``)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.key}` | `{s.default!r}` | {s.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
