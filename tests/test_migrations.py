"""The shipped ``connectwise`` Alembic branch, through the repo's Flask-Migrate environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import Migrate, downgrade, upgrade
from flask_sqlalchemy import SQLAlchemy

import flask_connectwise.migrate as cw_migrate
from flask_connectwise import ConnectWise

REPO_MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
TABLES = {"connectwise_credentials", "connectwise_feature_flags", "connectwise_change_log"}


@pytest.fixture
def host(database_url):
    app = Flask("migrating-host")
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db = SQLAlchemy(app)
    ConnectWise(app, db=db)
    cw_migrate.register(Migrate(app, db, directory=REPO_MIGRATIONS))
    with app.app_context():
        yield app, db
        db.session.remove()
        db.engine.dispose()


def tables(db) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_matches_the_models_and_downgrade_removes_everything(host):
    _app, db = host
    assert tables(db) & TABLES == set()
    upgrade()  # as a host deploys: one head, its history merged with our branch
    assert tables(db) >= TABLES
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,  # this host has only our models: compare our tables
            opts={"include_name": lambda name, kind, parent: kind != "table" or name in TABLES},
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == []
    with db.engine.connect() as conn:
        heads = {row[0] for row in conn.execute(sa.text("select version_num from alembic_version"))}
    assert heads == {"ex0002"}  # the host's merge of its history and our branch's head...
    assert script_of_the_repo().get_revision("ex0002").down_revision == ("ex0001", "cw0003")
    downgrade(revision="connectwise@base")
    assert tables(db) & TABLES == set()


def script_of_the_repo(*, ours_only: bool = False):
    """The repo's Alembic script directory with our revisions added (``ours_only``: ours alone,
    without the example app's history and its merge)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", REPO_MIGRATIONS)
    cw_migrate.add_version_location(config)
    if ours_only:
        config.set_main_option("version_locations", cw_migrate.versions_path())
    return ScriptDirectory.from_config(config)


def test_the_branch_is_labelled_and_rooted():
    script = script_of_the_repo(ours_only=True)
    # One straight line from the branch's single head down to its labelled root.
    head = script.get_revision("connectwise@head")
    chain = list(script.iterate_revisions(head.revision, "base"))
    assert [rev.revision for rev in chain] == ["cw0003", "cw0002", "cw0001"]
    base = chain[-1]
    assert base.down_revision is None and "connectwise" in base.branch_labels


def test_cw0002_keeps_existing_rows_with_todays_behaviour_and_downgrades(host):
    """A tenant stored before cw0002 keeps its credentials and gets the defaults that keep
    today's behaviour (company scope ``unset``, internal notes, refuse policy); a change row
    keeps its steps; downgrading to cw0001 drops only the new columns."""
    _app, db = host
    upgrade(revision="cw0001")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into connectwise_credentials (tenant_id, base_url, company_id,"
                " public_key, private_key, client_id, public_key_hint, client_id_hint,"
                " default_time_minutes, auto_update_status, revision, created_at, updated_at)"
                " values ('t1', 'https://cw.example', 'acme', 'c1', 'c2', 'c3', '', '', 15,"
                " false, 1, '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(
            sa.text(
                "insert into connectwise_change_log (reference, tenant_id, ticket_id,"
                " note_text, internal, request_hash, state, created_at, updated_at,"
                " note_state, note_attempts, time_state, time_attempts, status_state,"
                " status_attempts) values ('ref1', 't1', 12345, 'x', false, 'h', 'pending',"
                " '2026-01-01', '2026-01-01', 'pending', 0, 'skipped', 0, 'skipped', 0)"
            )
        )
    upgrade(revision="cw0002")
    with db.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "select company_scope, companies, note_visibility, email_contact,"
                " ticket_policy, public_key from connectwise_credentials"
            )
        ).one()
        change = conn.execute(
            sa.text("select visibility, auto_status, note_state from connectwise_change_log")
        ).one()
    assert tuple(row) == ("unset", None, "internal", False, "refuse", "c1")
    assert tuple(change) == (None, False, "pending")
    downgrade(revision="cw0001")
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("connectwise_credentials")}
    assert "company_scope" not in columns and "public_key" in columns
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from connectwise_change_log")).scalar() == 1
    downgrade(revision="connectwise@base")


def test_versions_are_package_data():
    assert Path(cw_migrate.versions_path()).is_dir()
    assert any(Path(cw_migrate.versions_path()).glob("cw0001_*.py"))
    assert any(Path(cw_migrate.versions_path()).glob("cw0002_*.py"))
    assert any(Path(cw_migrate.versions_path()).glob("cw0003_*.py"))


def test_cw0003_marks_existing_changes_verified_and_downgrades(host):
    """A change recorded before cw0003 had its ticket checked: ``ticket_verified`` is true;
    downgrading to cw0002 drops only that column and keeps the row."""
    _app, db = host
    upgrade(revision="cw0002")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into connectwise_change_log (reference, tenant_id, ticket_id,"
                " note_text, internal, request_hash, state, created_at, updated_at,"
                " note_state, note_attempts, time_state, time_attempts, status_state,"
                " status_attempts) values ('ref1', 't1', 12345, 'x', false, 'h', 'pending',"
                " '2026-01-01', '2026-01-01', 'pending', 0, 'skipped', 0, 'skipped', 0)"
            )
        )
    upgrade(revision="cw0003")
    with db.engine.connect() as conn:
        change = conn.execute(
            sa.text("select ticket_verified, note_state from connectwise_change_log")
        ).one()
    assert tuple(change) == (True, "pending")
    downgrade(revision="cw0002")
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("connectwise_change_log")}
    assert "ticket_verified" not in columns and "auto_status" in columns
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from connectwise_change_log")).scalar() == 1
    downgrade(revision="connectwise@base")
