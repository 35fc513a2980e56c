"""``flask connectwise …`` commands: encryption keys (generate, status, rotate)."""

from __future__ import annotations

from collections import Counter

import click
from flask.cli import with_appcontext

from .crypto import Cell, CryptoError, Keyring, generate_key
from .extension import state
from .models import CREDENTIALS_TABLE, SECRET_COLUMNS


@click.group("connectwise")
def connectwise_cli() -> None:
    """ConnectWise integration: encryption keys and delivery."""


@connectwise_cli.group("keys")
def keys() -> None:
    """Manage the keys that encrypt stored ConnectWise credentials."""


@keys.command("generate")
@click.option("--id", "key_id", default=None, help="Key id (default: k<date>-<random>).")
def keys_generate(key_id: str | None) -> None:
    """Print a new key to put FIRST in CONNECTWISE_ENCRYPTION_KEYS."""
    key = generate_key(key_id)
    click.echo(key)
    click.echo(
        "Put it first in CONNECTWISE_ENCRYPTION_KEYS (keep the older keys after it), restart, "
        "then run `flask connectwise keys rotate`.",
        err=True,
    )


def _keyring() -> Keyring:
    try:
        return state().service.keyring
    except CryptoError as exc:
        raise click.ClickException(str(exc)) from None


@keys.command("status")
@with_appcontext
def keys_status() -> None:
    """How many stored secrets each key encrypts."""
    keyring = _keyring()
    service = state().service
    model = service.models.Credentials
    counts: Counter[str] = Counter()
    unreadable = 0
    for row in service.session.query(model).order_by(model.id):
        for column in SECRET_COLUMNS:
            try:
                counts[keyring.key_id_of(getattr(row, column))] += 1
            except CryptoError:
                unreadable += 1
    click.echo(f"primary key: {keyring.primary_key_id}")
    for key_id in keyring.key_ids:
        click.echo(f"  {key_id}: {counts[key_id]} secrets")
    for key_id, count in sorted(counts.items()):
        if key_id not in keyring.key_ids:
            click.echo(f"  {key_id} (NOT CONFIGURED): {count} secrets")
    if unreadable:
        click.echo(f"  unreadable: {unreadable} secrets")
    waiting = sum(n for k, n in counts.items() if k != keyring.primary_key_id)
    if waiting:
        click.echo(f"{waiting} secrets still use older keys: run `flask connectwise keys rotate`.")


@keys.command("rotate")
@click.option("--dry-run", is_flag=True, help="Count what would change; write nothing.")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 10000))
@with_appcontext
def keys_rotate(dry_run: bool, batch_size: int) -> None:
    """Re-encrypt every stored secret with the primary key, in batches under row locks."""
    keyring = _keyring()
    service = state().service
    session = service.session
    model = service.models.Credentials
    total = session.query(model).count()
    rotated = checked = failed = 0
    last_id = 0
    with click.progressbar(length=total, label="Rotating credentials", file=None) as bar:
        while True:
            query = session.query(model).filter(model.id > last_id).order_by(model.id)
            if not dry_run:
                query = query.with_for_update()
            rows = query.limit(batch_size).all()
            if not rows:
                break
            for row in rows:
                last_id = row.id
                checked += 1
                changed = False
                for column in SECRET_COLUMNS:
                    cell = Cell(CREDENTIALS_TABLE, column, row.tenant_id)
                    token = getattr(row, column)
                    try:
                        if not keyring.needs_rotation(token):
                            continue
                        new = keyring.reencrypt(token, cell)
                    except CryptoError as exc:
                        failed += 1
                        click.echo(f"\n  cannot rotate {cell}: {exc}", err=True)
                        continue
                    changed = True
                    if not dry_run:
                        setattr(row, column, new)
                rotated += changed
            if dry_run:
                session.rollback()
            else:
                session.commit()
            bar.update(len(rows))
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    click.echo(
        f"Checked {checked} tenants: {verb} {rotated}, {failed} secrets could not be read; "
        f"primary key {keyring.primary_key_id}."
    )
    if failed:
        raise SystemExit(1)


@connectwise_cli.command("deliver")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--batch-size", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--give-up-hours", default=24.0, show_default=True, type=click.FloatRange(0, None))
@click.option(
    "--rate",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.01, None),
    help="Most changes per second per tenant.",
)
@click.option("--idle-sleep", default=2.0, show_default=True, type=click.FloatRange(0.01, None))
@with_appcontext
def deliver(
    once: bool, batch_size: int, give_up_hours: float, rate: float, idle_sleep: float
) -> None:
    """Deliver pending log-changes (the outbox) to ConnectWise."""
    from datetime import timedelta

    from .worker import OutboxWorker, TenantThrottle

    worker = OutboxWorker(
        state().service,
        batch_size=batch_size,
        give_up_after=timedelta(hours=give_up_hours),
        throttle=TenantThrottle(rate=rate, burst=max(1, int(rate * 2))),
    )
    click.echo(f"Worker {worker.worker_id} delivering{' once' if once else ' (Ctrl-C stops)'}...")

    def report(total: object) -> None:
        click.echo(f"  {total}")

    try:
        total = worker.run(once=once, idle_sleep=idle_sleep, progress=report if not once else None)
    except KeyboardInterrupt:
        click.echo("Stopped.")
        return
    click.echo(f"Done: {total}.")


@connectwise_cli.group("outbox")
def outbox() -> None:
    """Inspect and retry log-changes."""


@outbox.command("status")
@with_appcontext
def outbox_status() -> None:
    """How many changes are pending, delivered, waiting to retry or failed."""
    from .models import CHANGE_STATES
    from .worker import outbox_counts

    counts = outbox_counts(state().service)
    for name in CHANGE_STATES:
        click.echo(f"{name:>10}: {counts.get(name, 0)}")


@outbox.command("retry")
@click.argument("change")
@with_appcontext
def outbox_retry(change: str) -> None:
    """Deliver one change's outstanding steps now (CHANGE: its id or reference)."""
    service = state().service
    model = service.models.ChangeLog
    query = service.session.query(model)
    row = (
        query.filter(model.id == int(change)).one_or_none()
        if change.isdigit()
        else query.filter(model.reference == change).one_or_none()
    )
    if row is None:
        raise click.ClickException(f"No change {change!r}")
    outcome = service.deliver(row)
    parts = [
        f"{label}: {outcome[key]['state']}"
        for key, label in (("note", "note"), ("timeEntry", "time entry"), ("status", "status"))
    ]
    click.echo(f"Change {row.reference} on ticket #{row.ticket_id}: {', '.join(parts)}.")
    if row.state != "delivered":
        raise SystemExit(1)
