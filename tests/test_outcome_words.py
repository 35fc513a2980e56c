"""The outcome in words (issue 14): a refusal that lands on every step (another company's
ticket, an unusable member) is said once, not once per step; different reasons stay apart."""

from __future__ import annotations

from typing import Any

from flask_connectwise.models import GAVE_UP, RETRYING
from flask_connectwise.outbox import Outcome, Step, StepResult
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, cw_of

REFUSAL = "Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd"
CONTOSO = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}


def setup(app: Any, sandbox: Any, **settings: Any) -> None:
    configure_tenant(app, TENANT_A, sandbox, **settings)


def log(app: Any, ticket: int, **fields: Any) -> tuple[Outcome, Any]:
    """Record a change for tenant A and deliver it now; ``(outcome, row)``."""
    with app.app_context():
        cw = cw_of(app)
        row, _ = cw.outbox.record(TENANT_A, ticket, "Moved DID", hours=0.25, **fields)
        cw.outbox.session.commit()
        return cw.outbox.deliver(row), row


def outcome(state: str, **steps: StepResult) -> Outcome:
    results = {step: steps.get(step.value, StepResult("confirmed", 1)) for step in Step}
    return Outcome("cwlog-1", 12460, state, results, hours=0.25)


def test_a_refusal_of_every_step_is_said_once():
    failed = StepResult("failed", error=REFUSAL)
    result = outcome(GAVE_UP, note=failed, time=failed, status=failed)
    assert result.summary() == (
        "Could not log to ticket #12460. The note, the time entry and the status change "
        f"were not logged: {REFUSAL}."
    )
    assert result.summary().count("Woodgrove") == 1


def test_a_retry_summary_says_a_shared_reason_once():
    failed = StepResult("failed", error=REFUSAL)
    words = outcome(GAVE_UP, note=failed, time=failed, status=failed).retry_summary("Change x")
    assert words.count("Woodgrove") == 1
    assert f"Still failing: the note, the time entry and the status ({REFUSAL})." in words


def test_different_reasons_stay_with_their_steps():
    result = outcome(
        RETRYING,
        note=StepResult("failed", error="ConnectWise is down"),
        time=StepResult("failed", error="ConnectWise is down"),
        status=StepResult("failed", error="Status In Progress is not on board Voice Services"),
    )
    assert result.summary() == (
        "Could not log to ticket #12460 yet: the note and the time entry (ConnectWise is down); "
        "the status change (Status In Progress is not on board Voice Services) failed. "
        "It will be retried."
    )


def test_one_step_per_reason_reads_as_before():
    result = outcome(
        RETRYING,
        note=StepResult("failed", error="ConnectWise is down"),
        time=StepResult("failed", error="timed out"),
    )
    assert result.summary() == (
        "Logged to ticket #12460: status set; the note (ConnectWise is down) and the time "
        "entry (timed out) failed and will be retried."
    )


def test_another_companys_ticket_is_named_once_in_the_summary(app, connectwise_sandbox):
    setup(app, connectwise_sandbox, companyScope="listed", companies=[CONTOSO])
    woodgrove = next(t for t in connectwise_sandbox.tickets() if t["company"]["id"] == 255)
    result, _ = log(app, ticket=woodgrove["id"], member="jdoe")
    assert result.state == GAVE_UP
    assert result.summary().count("belongs to Woodgrove Bank") == 1, result.summary()


def test_an_unusable_member_is_named_once_in_the_summary(app, connectwise_sandbox):
    setup(app, connectwise_sandbox)
    ticket = connectwise_sandbox.ticket(12345)
    result, _ = log(app, 12345, member="rbrown", status_id=ticket["status"]["id"])
    assert result.state == GAVE_UP
    assert result.summary().count("'rbrown' is inactive") == 1, result.summary()
