"""``python -m flask_connectwise.sandbox``: serve the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections.abc import Sequence

from .faults import KINDS
from .rules import RULE_NAMES, SandboxRules, parse_rate_limit, parse_rule_specs
from .server import Sandbox

#: The published demo keys the standalone sandbox accepts on loopback unless told otherwise
#: (docs/quickstart.md, docs/sandbox.md); the example app's demo uses the same ones.
DEMO_CREDENTIALS = {
    "company_id": "sandbox",
    "public_key": "demo-public-key",
    "private_key": "demo-private-key",
    "client_id": "00000000-0000-4000-8000-00000000d3e0",
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_fault(spec: str) -> dict[str, object]:
    """``PATH:KIND[:STATUS][:COUNT]``; kinds other than ``status`` also take ``PATH:KIND[:COUNT]``."""
    parts = spec.split(":")
    if len(parts) < 2 or parts[1] not in KINDS:
        raise argparse.ArgumentTypeError(
            f"--fault {spec!r}: expected PATH:KIND[:STATUS][:COUNT], KIND in {', '.join(KINDS)}"
        )
    path, kind, rest = parts[0], parts[1], parts[2:]
    out: dict[str, object] = {"path": path, "kind": kind}
    try:
        if kind == "status":
            if not rest or not rest[0]:
                raise argparse.ArgumentTypeError(f"--fault {spec!r}: a status fault needs STATUS")
            out["status"] = int(rest[0])
            rest = rest[1:]
        elif len(rest) == 2 and rest[0] == "":
            rest = rest[1:]
        if rest and rest[0]:
            out["count"] = int(rest[0])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--fault {spec!r}: STATUS and COUNT are integers"
        ) from None
    return out


def parse_rate(spec: str) -> tuple[int, float]:
    """``N/SECONDS``, e.g. ``60/60`` (the same check as the ``rate_limit`` rule)."""
    try:
        return parse_rate_limit(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate-limit {spec!r}: expected N/SECONDS") from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m flask_connectwise.sandbox",
        description="Serve a ConnectWise Manage-compatible sandbox.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--allow-remote", action="store_true", help="allow a host that is not a loopback address"
    )
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--company-id", default="sandbox")
    p.add_argument("--public-key")
    p.add_argument("--private-key")
    p.add_argument("--client-id")
    p.add_argument(
        "--random-keys",
        action="store_true",
        help=(
            "make random keys instead of the published demo keys (always so with "
            "--allow-remote on a non-loopback address)"
        ),
    )
    p.add_argument("--codebase", default="v2025_1/")
    p.add_argument(
        "--fault",
        action="append",
        type=parse_fault,
        default=[],
        metavar="PATH:KIND[:STATUS][:COUNT]",
        help="inject a fault (repeatable; COUNT 0 = every matching request)",
    )
    p.add_argument("--rate-limit", type=parse_rate, metavar="N/SECONDS")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--cloud-auth-404",
        action="store_true",
        help="answer bad credentials with 404 NotFound, as cloud ConnectWise can (default 401)",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE",
        help=(
            "tenant rule switch, repeatable, applied in order: a profile (strict, lenient), "
            "a rule to turn on, no-RULE to turn it off, or RULE=VALUE "
            f"(e.g. billable_default=DoNotBill, rate_limit=60/60). Rules: {', '.join(RULE_NAMES)}"
        ),
    )
    return p


def parse_rules(specs: list[str]) -> SandboxRules:
    """``--rule`` values as ``SandboxRules`` (an argparse error for a bad one)."""
    try:
        return parse_rule_specs(specs)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rules = parse_rules(args.rule)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not args.allow_remote and not _is_loopback(args.host):
        print(
            f"Refusing to listen on {args.host}: not a loopback address "
            f"(pass --allow-remote to do it anyway).",
            file=sys.stderr,
        )
        return 2
    demo = not args.random_keys and _is_loopback(args.host)
    keys = {
        name: getattr(args, name) or (DEMO_CREDENTIALS[name] if demo else None)
        for name in ("public_key", "private_key", "client_id")
    }
    sb = Sandbox(
        args.host,
        args.port,
        company_id=args.company_id,
        **keys,
        codebase=args.codebase,
        latency=args.latency_ms / 1000.0,
        seed=args.seed,
        cloud_auth_404=args.cloud_auth_404,
        rules=rules,
    )
    for fault in args.fault:
        sb.inject_fault(**fault)
    if args.rate_limit:
        sb.set_rate_limit(*args.rate_limit)
    sb.start()
    print(f"ConnectWise sandbox listening on {sb.url}  (Ctrl-C to stop)")
    for key, value in sb.credentials.items():
        print(f"  {key:<12} {value}")
    print(f"  codebase     {sb.codebase}  (v4_6_release/ also works)")
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
