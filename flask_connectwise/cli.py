"""``flask connectwise …`` commands: encryption keys (generate, status, rotate), delivery, migrations."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from . import ratelimit
from .crypto import CONFIG_NAME, Cell, CryptoError, Keyring, UnknownKeyError, generate_key
from .current import state
from .models import CREDENTIALS_TABLE, SECRET_COLUMNS, ChangeState
from .outbox import OutboxWorker
from .tenants import IntegrationOffError, Tenants

#: Secrets that do not decrypt listed one by one; the rest are counted.
_SHOWN_PROBLEMS = 20


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
        return state().tenants.keyring
    except CryptoError as exc:
        raise click.ClickException(str(exc)) from None


@dataclass
class _Check:
    """What decrypting every stored secret found."""

    rows: int = 0
    #: key id -> secrets that decrypt with it
    verified: Counter[str] = field(default_factory=Counter)
    #: key id -> secrets naming it that do not decrypt ("" when no key id can be read)
    failed: Counter[str] = field(default_factory=Counter)
    #: rows holding a secret that is not under the primary key
    to_rotate: int = 0
    #: (where, why) of every secret that does not decrypt
    problems: list[tuple[Cell, str]] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


def _batches(tenants: Tenants, batch_size: int, *, lock: bool = False) -> Iterator[list[Any]]:
    """Every credentials row, ``batch_size`` at a time in id order (under row locks if ``lock``)."""
    model = tenants.models.Credentials
    last_id = 0
    while True:
        query = tenants.session.query(model).filter(model.id > last_id).order_by(model.id)
        if lock:
            query = query.with_for_update()
        rows = query.limit(batch_size).all()
        if not rows:
            return
        last_id = rows[-1].id
        yield rows


def _progress(total: int, label: str) -> Any:
    """A progress bar on stderr, so stdout holds only the report."""
    # sys.stderr as it is now (a test runner swaps it); click.get_text_stream is deprecated in 8.5.
    return click.progressbar(length=total, label=label, file=sys.stderr)


def _check_secrets(tenants: Tenants, keyring: Keyring, batch_size: int) -> _Check:
    """Decrypt every stored secret (the text is thrown away) and count what each key opens."""
    check = _Check()
    total = tenants.session.query(tenants.models.Credentials).count()
    with _progress(total, "Decrypting every stored secret") as bar:
        for rows in _batches(tenants, batch_size):
            for row in rows:
                check.rows += 1
                rotate = False
                for column in SECRET_COLUMNS:
                    cell = Cell(CREDENTIALS_TABLE, column, row.tenant_id)
                    try:
                        key_id = keyring.verify(getattr(row, column), cell)
                    except UnknownKeyError as exc:
                        check.failed[exc.key_id or ""] += 1
                        check.problems.append(
                            (cell, f"encrypted with key {exc.key_id!r}, which is not configured")
                        )
                        continue
                    except CryptoError as exc:
                        named = getattr(exc, "key_id", None) or ""
                        check.failed[named] += 1
                        why = (
                            f"does not decrypt with the configured key {named!r}"
                            if named
                            else "is not an encrypted value (plaintext or damaged)"
                        )
                        check.problems.append((cell, why))
                        continue
                    check.verified[key_id] += 1
                    rotate = rotate or key_id != keyring.primary_key_id
                check.to_rotate += rotate
            tenants.session.rollback()  # a read-only pass: end each batch's transaction
            bar.update(len(rows))
    return check


def _what_to_do(check: _Check, keyring: Keyring) -> list[str]:
    """Plain-words advice for the secrets that do not decrypt, one line per cause."""
    lines: list[str] = []
    for key_id, count in sorted(check.failed.items()):
        if not key_id:
            lines.append(
                f"{count} stored values are not encrypted secrets (plaintext or damaged data)."
            )
        elif key_id not in keyring.key_ids:
            lines.append(
                f"{count} secrets were encrypted with key {key_id!r}, which is not in "
                f"{CONFIG_NAME}: add that key back (after the first entry)."
            )
        elif not check.verified[key_id]:
            lines.append(
                f"Key {key_id!r} decrypts none of the {count} secrets encrypted under that id: the "
                f"key material configured as {key_id!r} is not the one they were encrypted with. "
                f"Put the original '{key_id}:...' entry back in {CONFIG_NAME}."
            )
        else:
            lines.append(
                f"{count} secrets under key {key_id!r} do not decrypt although "
                f"{check.verified[key_id]} others do: those values were altered or copied from "
                "another tenant or column."
            )
    lines.append(
        "A secret that cannot be recovered must be entered again: save that tenant's "
        "ConnectWise credentials again in the admin (or POST .../credentials)."
    )
    return lines


def _report_problems(check: _Check, keyring: Keyring) -> None:
    click.echo(f"{check.failures} stored secrets do not decrypt:", err=True)
    for cell, why in check.problems[:_SHOWN_PROBLEMS]:
        click.echo(f"  {cell}: {why}", err=True)
    if len(check.problems) > _SHOWN_PROBLEMS:
        click.echo(f"  ... and {len(check.problems) - _SHOWN_PROBLEMS} more", err=True)
    for line in _what_to_do(check, keyring):
        click.echo(line, err=True)


@keys.command("status")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10000))
@with_appcontext
def keys_status(batch_size: int) -> None:
    """Decrypt every stored secret and report, per key, how many decrypt and how many do not.

    Exits non-zero when any secret does not decrypt with the configured keys.
    """
    keyring = _keyring()
    check = _check_secrets(state().tenants, keyring, batch_size)
    click.echo(f"primary key: {keyring.primary_key_id}")
    for key_id in keyring.key_ids:
        ok, bad = check.verified[key_id], check.failed[key_id]
        line = f"  {key_id}: {ok + bad} secrets"
        if bad:
            line += f", {ok} decrypt, {bad} DO NOT DECRYPT"
        elif ok:
            line += ", all decrypt"
        click.echo(line)
    for key_id, count in sorted(check.failed.items()):
        if key_id and key_id not in keyring.key_ids:
            click.echo(f"  {key_id} (NOT CONFIGURED): {count} secrets, none decrypt")
    if check.failed[""]:
        click.echo(f"  unreadable: {check.failed['']} secrets")
    secrets = sum(check.verified.values()) + check.failures
    click.echo(
        f"Checked {check.rows} tenants, {secrets} secrets: {sum(check.verified.values())} "
        f"decrypt, {check.failures} do not."
    )
    if check.failures:
        _report_problems(check, keyring)
        raise click.ClickException(
            "Some stored secrets do not decrypt with the configured keys; fix "
            f"{CONFIG_NAME} as said above, then run `flask connectwise keys status` again."
        )
    waiting = sum(n for k, n in check.verified.items() if k != keyring.primary_key_id)
    if waiting:
        click.echo(f"{waiting} secrets still use older keys: run `flask connectwise keys rotate`.")


@keys.command("rotate")
@click.option("--dry-run", is_flag=True, help="Check and count what would change; write nothing.")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 10000))
@with_appcontext
def keys_rotate(dry_run: bool, batch_size: int) -> None:
    """Re-encrypt every stored secret with the primary key, in batches under row locks.

    First every secret is decrypted; if any does not, nothing is written and the command exits
    non-zero saying what to do.
    """
    keyring = _keyring()
    tenants = state().tenants
    session = tenants.session
    check = _check_secrets(tenants, keyring, batch_size)
    if check.failures:
        _report_problems(check, keyring)
        raise click.ClickException(
            f"Nothing was re-encrypted: {check.failures} secrets could not be read. Fix "
            f"{CONFIG_NAME} as said above, check with `flask connectwise keys status`, then run "
            "`flask connectwise keys rotate` again."
        )
    if dry_run:
        click.echo(
            f"Checked {check.rows} tenants: would re-encrypt {check.to_rotate}, 0 secrets could "
            f"not be read; primary key {keyring.primary_key_id}."
        )
        return
    rotated = checked = 0
    with _progress(check.to_rotate, "Re-encrypting with the primary key") as bar:
        for rows in _batches(tenants, batch_size, lock=True):
            changed = 0
            for row in rows:
                checked += 1
                row_changed = False
                for column in SECRET_COLUMNS:
                    cell = Cell(CREDENTIALS_TABLE, column, row.tenant_id)
                    token = getattr(row, column)
                    try:
                        if not keyring.needs_rotation(token):
                            continue
                        new = keyring.reencrypt(token, cell)
                        keyring.verify(new, cell)
                    except CryptoError:
                        session.rollback()
                        raise click.ClickException(
                            f"{cell} changed since the check and does not decrypt; this batch was "
                            f"not written ({rotated} tenants before it were re-encrypted and "
                            "decrypt with the primary key). Run `flask connectwise keys status`, "
                            "then rotate again."
                        ) from None
                    setattr(row, column, new)
                    row_changed = True
                changed += row_changed
            session.commit()
            rotated += changed
            bar.update(changed)
    click.echo(
        f"Checked {checked} tenants: re-encrypted {rotated}, 0 secrets could not be read; "
        f"primary key {keyring.primary_key_id}."
    )


@connectwise_cli.command("deliver")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--batch-size", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--give-up-hours", default=24.0, show_default=True, type=click.FloatRange(0, None))
@click.option(
    "--rate",
    default=None,
    type=click.FloatRange(0.01, None),
    help="Most changes per second per tenant (default: CONNECTWISE_RATE_LIMIT).",
)
@click.option("--idle-sleep", default=2.0, show_default=True, type=click.FloatRange(0.01, None))
@with_appcontext
def deliver(
    once: bool, batch_size: int, give_up_hours: float, rate: float | None, idle_sleep: float
) -> None:
    """Deliver pending log-changes (the outbox) to ConnectWise.

    One bad change never stops it (the change is set aside: failed, needs attention), nor does
    the database going away (it waits and goes on). With --once it gives up after a few failed
    tries in a row and exits 1; the changes stay queued.
    """
    from datetime import timedelta

    worker = OutboxWorker(
        state().outbox,
        batch_size=batch_size,
        give_up_after=timedelta(hours=give_up_hours),
        # Shared with the app's other workers through Redis when there is one (ratelimit.py).
        throttle=ratelimit.for_app(current_app)
        if rate is None
        else ratelimit.from_config(current_app, rate=rate, burst=max(1, int(rate * 2))),
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
    if total.stopped:
        click.echo(f"Stopped early: {total.stopped}", err=True)
        raise SystemExit(1)


@connectwise_cli.group("outbox")
def outbox() -> None:
    """Inspect and retry log-changes."""


@outbox.command("status")
@with_appcontext
def outbox_status() -> None:
    """How many changes are pending, delivered, waiting to retry or failed."""
    counts = state().outbox.counts()
    for name in ChangeState.ALL:
        click.echo(f"{name:>10}: {counts.get(name, 0)}")


@outbox.command("retry")
@click.argument("change")
@with_appcontext
def outbox_retry(change: str) -> None:
    """Deliver one change's outstanding steps now (CHANGE: its id or reference)."""
    outbox = state().outbox
    row = outbox.find(change)
    if row is None:
        raise click.ClickException(f"No change {change!r}")
    try:
        outcome = outbox.deliver(row)
    except IntegrationOffError as exc:
        raise click.ClickException(
            f"{exc.message} Change {row.reference} stays queued and is delivered once the "
            "integration is turned on."
        ) from None
    steps = ", ".join(f"{step.label}: {result.state}" for step, result in outcome.steps.items())
    click.echo(f"Change {row.reference} on ticket #{row.ticket_id}: {steps}.")
    click.echo(outcome.summary())
    if not outcome.delivered:
        raise SystemExit(1)


@connectwise_cli.group("migrations")
def migrations() -> None:
    """The extension's Alembic branch inside your Flask-Migrate history."""


@migrations.command("merge")
@click.option("-d", "--directory", default=None, help="Migrations folder (default: Migrate's).")
@with_appcontext
def migrations_merge(directory: str | None) -> None:
    """Write the revision that merges the 'connectwise' branch into your history (once, and again
    after an upgrade of flask-connectwise that brings a migration), so plain 'flask db upgrade' and
    'flask db migrate' keep working."""
    from flask import g

    from . import migrate as cw_migrate

    migrate = current_app.extensions.get("migrate")
    if migrate is None:
        raise click.ClickException("Flask-Migrate is not set up: create Migrate(app, db) first.")
    g.connectwise_merging = True
    config = migrate.migrate.get_config(directory)
    if cw_migrate._configure not in migrate.migrate.configure_callbacks:
        raise click.ClickException(
            "Call flask_connectwise.migrate.register(migrate) after creating Migrate(app, db)."
        )
    heads = cw_migrate.unmerged_heads(config)
    path = cw_migrate.merge(config)
    if path is None:
        click.echo("Nothing to merge: your migrations have one head.")
        return
    click.echo(f"Merged {', '.join(heads)} in {path}. Now run: flask db upgrade")
