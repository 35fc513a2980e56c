"""``flask connectwise keys generate | status | rotate``."""

from __future__ import annotations

import pytest

from flask_connectwise.crypto import Cell, Keyring, generate_key
from flask_connectwise.models import CREDENTIALS_TABLE, SECRET_COLUMNS
from tests.hosts import cw_of


def fill(app, count: int) -> dict[str, dict[str, str]]:
    """``count`` tenants' credentials encrypted with the app's current primary key."""
    cw = app.extensions["test_cw"]
    db = app.extensions["test_db"]
    expected: dict[str, dict[str, str]] = {}
    with app.app_context():
        keyring = cw.tenants.keyring
        for n in range(count):
            tenant = f"t{n:04d}"
            secrets = {c: f"{c}-{n}-secret" for c in SECRET_COLUMNS}
            row = cw.models.Credentials(
                tenant_id=tenant,
                base_url="http://127.0.0.1:1",
                company_id="acme",
                **{
                    c: keyring.encrypt(v, Cell(CREDENTIALS_TABLE, c, tenant))
                    for c, v in secrets.items()
                },
            )
            db.session.add(row)
            expected[tenant] = secrets
        db.session.commit()
    return expected


def key_ids(app) -> list[str]:
    cw = app.extensions["test_cw"]
    with app.app_context():
        keyring: Keyring = cw.tenants.keyring
        rows = cw.models.Credentials.query.all()
        return sorted({keyring.key_id_of(getattr(r, c)) for r in rows for c in SECRET_COLUMNS})


def test_generate_prints_a_usable_key(app):
    result = app.test_cli_runner().invoke(args=["connectwise", "keys", "generate", "--id", "k9"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert key.startswith("k9:")
    assert Keyring([key]).primary_key_id == "k9"
    assert "rotate" in result.stderr


def test_rotation_of_1000_rows_loses_nothing(app):
    expected = fill(app, 1000)
    old_key = app.config["CONNECTWISE_ENCRYPTION_KEYS"][0]
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = [generate_key("k2"), old_key]
    with app.app_context():
        cw_of(app).tenants.reload_keys()
    runner = app.test_cli_runner()

    status = runner.invoke(args=["connectwise", "keys", "status"])
    assert status.exit_code == 0
    assert "k2: 0 secrets" in status.stdout and "k1: 3000 secrets" in status.stdout

    dry = runner.invoke(args=["connectwise", "keys", "rotate", "--dry-run", "--batch-size", "100"])
    assert dry.exit_code == 0, dry.output
    assert "would re-encrypt 1000" in dry.stdout
    assert key_ids(app) == ["k1"]

    done = runner.invoke(args=["connectwise", "keys", "rotate", "--batch-size", "100"])
    assert done.exit_code == 0, done.output
    assert "Checked 1000 tenants: re-encrypted 1000" in done.stdout
    assert key_ids(app) == ["k2"]

    # Only the new key is needed now, and every secret is intact.
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = app.config["CONNECTWISE_ENCRYPTION_KEYS"][:1]
    with app.app_context():
        cw = cw_of(app)
        cw.tenants.reload_keys()
        for tenant, secrets in expected.items():
            settings = cw.tenants.settings(tenant)
            assert {c: getattr(settings, c) for c in SECRET_COLUMNS} == secrets
    again = runner.invoke(args=["connectwise", "keys", "rotate"])
    assert "re-encrypted 0" in again.stdout


def test_rotate_reports_rows_it_cannot_read(app):
    fill(app, 3)
    cw = app.extensions["test_cw"]
    with app.app_context():
        row = cw.models.Credentials.query.filter_by(tenant_id="t0001").one()
        row.private_key = "plaintext-in-the-column"
        app.extensions["test_db"].session.commit()
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = [
        generate_key("k2"),
        *app.config["CONNECTWISE_ENCRYPTION_KEYS"],
    ]
    with app.app_context():
        cw_of(app).tenants.reload_keys()
    result = app.test_cli_runner().invoke(args=["connectwise", "keys", "rotate"])
    assert result.exit_code == 1
    assert "connectwise_credentials.private_key for tenant 't0001'" in result.output
    assert "plaintext-in-the-column" not in result.output


def test_commands_explain_missing_keys(app):
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = None
    with app.app_context():
        cw_of(app).tenants.reload_keys()
    result = app.test_cli_runner().invoke(args=["connectwise", "keys", "status"])
    assert result.exit_code != 0
    assert "CONNECTWISE_ENCRYPTION_KEYS" in result.output
    assert "Traceback" not in result.output


# -- a wrong key is never approved ---------------------------------------------------------------


def tokens(app) -> dict[tuple[str, str], str]:
    """Every stored ciphertext, by (tenant, column)."""
    cw = app.extensions["test_cw"]
    with app.app_context():
        rows = cw.models.Credentials.query.all()
        return {(r.tenant_id, c): getattr(r, c) for r in rows for c in SECRET_COLUMNS}


def use_keys(app, *keys: str) -> None:
    app.config["CONNECTWISE_ENCRYPTION_KEYS"] = list(keys)
    with app.app_context():
        cw_of(app).tenants.reload_keys()


def test_status_reports_a_wrong_key_under_the_right_id(app):
    fill(app, 3)
    use_keys(app, generate_key("k1"))  # same id, other material
    result = app.test_cli_runner().invoke(args=["connectwise", "keys", "status"])
    assert result.exit_code == 1
    assert "k1: 9 secrets, 0 decrypt, 9 DO NOT DECRYPT" in result.stdout
    assert "Checked 3 tenants, 9 secrets: 0 decrypt, 9 do not." in result.stdout
    assert "connectwise_credentials.public_key for tenant 't0000'" in result.stderr
    assert "Put the original 'k1:...' entry back in CONNECTWISE_ENCRYPTION_KEYS" in result.stderr
    assert "Traceback" not in result.output
    assert "-secret" not in result.output


def test_status_counts_what_each_key_decrypts(app):
    fill(app, 2)  # k1
    k1 = app.config["CONNECTWISE_ENCRYPTION_KEYS"][0]
    use_keys(app, generate_key("k2"), k1)
    cw = app.extensions["test_cw"]
    with app.app_context():
        keyring = cw.tenants.keyring
        row = cw.models.Credentials(
            tenant_id="t-new",
            base_url="http://127.0.0.1:1",
            company_id="acme",
            **{
                c: keyring.encrypt("x", Cell(CREDENTIALS_TABLE, c, "t-new")) for c in SECRET_COLUMNS
            },
        )
        app.extensions["test_db"].session.add(row)
        app.extensions["test_db"].session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["connectwise", "keys", "status"])
    assert result.exit_code == 0, result.output
    assert "k2: 3 secrets, all decrypt" in result.stdout
    assert "k1: 6 secrets, all decrypt" in result.stdout
    assert "Checked 3 tenants, 9 secrets: 9 decrypt, 0 do not." in result.stdout
    assert "6 secrets still use older keys" in result.stdout
    assert "Decrypting every stored secret" in result.stderr  # progress

    # k1 dropped from the configuration: its secrets are reported, by key id.
    use_keys(app, app.config["CONNECTWISE_ENCRYPTION_KEYS"][0])
    result = runner.invoke(args=["connectwise", "keys", "status"])
    assert result.exit_code == 1
    assert "k1 (NOT CONFIGURED): 6 secrets, none decrypt" in result.stdout
    assert "which is not in CONNECTWISE_ENCRYPTION_KEYS: add that key back" in result.stderr


def test_status_tells_altered_values_from_a_wrong_key(app):
    fill(app, 3)
    cw = app.extensions["test_cw"]
    with app.app_context():
        rows = {r.tenant_id: r for r in cw.models.Credentials.query.all()}
        rows["t0002"].private_key = rows["t0001"].private_key  # copied from another tenant
        app.extensions["test_db"].session.commit()
    result = app.test_cli_runner().invoke(args=["connectwise", "keys", "status"])
    assert result.exit_code == 1
    assert "k1: 9 secrets, 8 decrypt, 1 DO NOT DECRYPT" in result.stdout
    assert "connectwise_credentials.private_key for tenant 't0002'" in result.stderr
    assert "altered or copied" in result.stderr


@pytest.mark.parametrize("primary_is_wrong", [True, False])
def test_rotate_with_a_wrong_key_writes_nothing(app, primary_is_wrong):
    fill(app, 3)
    before = tokens(app)
    if primary_is_wrong:
        use_keys(app, generate_key("k1"))  # nothing "needs rotation", yet nothing decrypts
    else:
        use_keys(app, generate_key("k2"), generate_key("k1"))
    result = app.test_cli_runner().invoke(args=["connectwise", "keys", "rotate"])
    assert result.exit_code == 1
    assert "Nothing was re-encrypted: 9 secrets could not be read" in result.output
    assert "keys status" in result.output
    assert tokens(app) == before


def test_rotate_checks_every_row_before_writing_any(app):
    """One unreadable secret in the last batch: no earlier batch is written (no partial
    rotation)."""
    fill(app, 250)
    cw = app.extensions["test_cw"]
    with app.app_context():
        rows = {r.tenant_id: r for r in cw.models.Credentials.query.all()}
        rows["t0249"].client_id = rows["t0248"].client_id
        app.extensions["test_db"].session.commit()
    before = tokens(app)
    use_keys(app, generate_key("k2"), *app.config["CONNECTWISE_ENCRYPTION_KEYS"])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["connectwise", "keys", "rotate", "--batch-size", "100"])
    assert result.exit_code == 1
    assert "connectwise_credentials.client_id for tenant 't0249'" in result.output
    assert tokens(app) == before
    dry = runner.invoke(args=["connectwise", "keys", "rotate", "--dry-run"])
    assert dry.exit_code == 1 and tokens(app) == before
