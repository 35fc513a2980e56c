"""Tenant rule switches: behaviour that differs between real ConnectWise tenants or is not
documented (CONNECTWISE_API.md §10 lists them as guesses), so the sandbox models it as a switch.

``SandboxRules()`` is the lenient default the demo uses (the sandbox as it always was);
``STRICT`` turns every refusal on. Set them with ``Sandbox(rules=STRICT)``,
``python -m flask_connectwise.sandbox --rule strict --rule billable_default=DoNotBill``,
``POST /_sandbox/rules {"profile": "strict", "overlapping_time": false}`` or the
``connectwise_sandbox_rules`` fixture of ``flask_connectwise.testing``. ``reset()`` restores the
rules the sandbox started with.

Rule                     | effect when on (error texts beyond the quoted §10 one are guesses)
-------------------------|------------------------------------------------------------------
closed_ticket_time       | time on a ticket whose ``closedFlag`` is true: 400 on chargeToId
overlapping_time         | an entry overlapping another of the same member: 400 on timeStart
time_entry_not_allowed   | status with ``timeEntryNotAllowed``: 400 on chargeToId (on by default,
                         | as the sandbox always did)
billable_default         | ``billableOption`` of entries sent without one (Billable/DoNotBill/...)
work_type_required       | an entry without ``workType``: 400 MissingRequiredField workType
work_role_required       | an entry without ``workRole``: 400 "The default Work Role is not valid
                         | for the selected location." (real wording, §10) on workRole
api_member_time          | time for a member with ``licenseClass`` "A" (API member): 400 on member
cloud_auth_404           | bad credentials answer 404 (the ``cloud_auth_404`` knob)
rate_limit               | ``"N/S"``: at most N API requests per S seconds, then 429
                         | ``ConnectWiseApi`` (errors null) with ``Retry-After``; ``None`` = off

``rate_limit`` is not part of ``STRICT``: the real limit is undocumented and differs per tenant,
and any value low enough to matter would make strict-profile tests fail or wait for reasons
that have nothing to do with the rule under test. It drives the same limiter as the older
``Sandbox.set_rate_limit`` / ``--rate-limit`` / ``POST /_sandbox/rate-limit`` knob: whichever was
set last wins, and ``rules`` reports the limit in force. Work types and roles sent on a time
entry are always checked against ``time/workTypes`` / ``time/workRoles`` (unknown, inactive,
role not valid at the board's location: 400); that is not a switch.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

BILLABLE_OPTIONS = ("Billable", "DoNotBill", "NoCharge", "NoDefault")


@dataclass(frozen=True)
class SandboxRules:
    """Which tenant rules the sandbox enforces (defaults: lenient, as for the demo)."""

    closed_ticket_time: bool = False
    overlapping_time: bool = False
    time_entry_not_allowed: bool = True
    billable_default: str = "Billable"
    work_type_required: bool = False
    work_role_required: bool = False
    api_member_time: bool = False
    cloud_auth_404: bool = False
    rate_limit: str | None = None

    def __post_init__(self) -> None:
        if self.rate_limit is not None:  # validated, then kept as "N/S" without spaces
            object.__setattr__(
                self, "rate_limit", rate_limit_spec(*parse_rate_limit(self.rate_limit))
            )
        if self.billable_default not in BILLABLE_OPTIONS:
            raise ValueError(
                f"billable_default must be one of {', '.join(BILLABLE_OPTIONS)}, "
                f"not {self.billable_default!r}"
            )
        for f in fields(self):
            if f.type in ("bool", bool) and not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"rule {f.name} must be true or false")

    def as_dict(self) -> dict[str, Any]:
        """The rules as JSON-ready ``{name: value}``."""
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> SandboxRules:
        """A copy with ``changes`` (names as in the dataclass); unknown names are a ValueError."""
        unknown = sorted(set(changes) - set(RULE_NAMES))
        if unknown:
            raise ValueError(
                f"unknown sandbox rule {', '.join(unknown)}; known: {', '.join(RULE_NAMES)}"
            )
        return replace(self, **changes)


LENIENT = SandboxRules()
STRICT = SandboxRules(
    closed_ticket_time=True,
    overlapping_time=True,
    time_entry_not_allowed=True,
    billable_default="DoNotBill",
    work_type_required=True,
    work_role_required=True,
    api_member_time=True,
    cloud_auth_404=True,
)
PROFILES = {"lenient": LENIENT, "strict": STRICT}
RULE_NAMES = tuple(f.name for f in fields(SandboxRules))
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")


def parse_rate_limit(spec: Any) -> tuple[int, float]:
    """``"N/S"`` (N requests per S seconds, e.g. ``"60/60"``) as ``(N, S)``; anything else,
    N < 1 or S not above 0, is a ValueError that says what is expected."""
    match = _RATE.fullmatch(spec) if isinstance(spec, str) else None
    if match:
        count, seconds = int(match[1]), float(match[2])
        if count >= 1 and seconds > 0 and math.isfinite(seconds):
            return count, seconds
    raise ValueError(
        f"rate_limit must be N/SECONDS (at least 1 request per more than 0 seconds, "
        f"e.g. 60/60) or null for no limit, not {spec!r}"
    )


def rate_limit_spec(max_requests: int | None, per_seconds: float) -> str | None:
    """The ``rate_limit`` rule value for a limiter setting (``None`` when off)."""
    if max_requests is None:
        return None
    seconds = float(per_seconds)
    return f"{max_requests}/{int(seconds) if seconds.is_integer() else seconds}"


def coerce(rules: SandboxRules | str | dict[str, Any] | None) -> SandboxRules:
    """Rules from a ``SandboxRules``, a profile name, a dict (optional ``profile`` key plus
    rule overrides) or ``None`` (lenient)."""
    if rules is None:
        return LENIENT
    if isinstance(rules, SandboxRules):
        return rules
    if isinstance(rules, str):
        return profile(rules)
    if isinstance(rules, dict):
        changes = dict(rules)
        base = profile(str(changes.pop("profile", "lenient")))
        return base.updated(changes)
    raise TypeError(f"rules must be SandboxRules, a profile name or a dict, not {rules!r}")


def profile(name: str) -> SandboxRules:
    """``lenient`` or ``strict``."""
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown sandbox profile {name!r}; known: {', '.join(PROFILES)}"
        ) from None


def parse_rule_specs(specs: list[str]) -> SandboxRules:
    """Command-line ``--rule`` values, applied in order: a profile name (``strict``), a rule
    name (turn it on), ``name=value`` or ``no-name`` (turn it off)."""
    rules = LENIENT
    for spec in specs:
        spec = spec.strip()
        if spec.lower() in PROFILES:
            rules = profile(spec)
            continue
        name, sep, raw = spec.partition("=")
        name = name.strip().replace("-", "_")
        value: Any = True
        if not sep and name.startswith("no_"):
            name, value = name[3:], False
            if name == "rate_limit":
                value = None
        elif sep:
            value = raw.strip()
            if name == "rate_limit":
                value = None if value.lower() in _FALSE | {"none", "null", ""} else value
            elif name != "billable_default":
                if value.lower() in _TRUE:
                    value = True
                elif value.lower() in _FALSE:
                    value = False
                else:
                    raise ValueError(f"--rule {spec!r}: expected true or false")
        rules = rules.updated({name: value})
    return rules
