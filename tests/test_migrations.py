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
    upgrade(revision="heads")  # as a host deploys: its own branch and ours
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
    assert "cw0001" in heads
    downgrade(revision="connectwise@base")
    assert tables(db) & TABLES == set()


def test_the_branch_is_labelled_and_rooted():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", REPO_MIGRATIONS)
    cw_migrate.add_version_location(config)
    script = ScriptDirectory.from_config(config)
    base = script.get_revision("connectwise@head")
    assert base.down_revision is None and "connectwise" in base.branch_labels


def test_versions_are_package_data():
    assert Path(cw_migrate.versions_path()).is_dir()
    assert any(Path(cw_migrate.versions_path()).glob("cw0001_*.py"))
