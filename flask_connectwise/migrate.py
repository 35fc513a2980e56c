"""Alembic wiring: the extension's revisions ship in the package as the ``connectwise`` branch.

A host using Flask-Migrate adds one line after creating its ``Migrate``, and once (per
flask-connectwise release that brings a migration) lets the CLI write a merge revision::

    migrate = Migrate(app, db)
    flask_connectwise.migrate.register(migrate)

    $ flask connectwise migrations merge     # writes migrations/versions/<rev>_merge_connectwise.py
    $ flask db upgrade                       # the host's tables and the extension's

The extension's revisions live in the host's ``alembic_version`` table as their own branch
(``connectwise``); the merge revision joins that branch to the host's history so the host keeps
one head and its plain ``flask db upgrade`` / ``flask db migrate`` work as before. Until the
merge exists, every ``flask db`` command prints what to run. The host's autogenerate never
emits operations on the extension's tables (``include_object`` filter).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

#: The branch label of the extension's revisions.
BRANCH = "connectwise"
VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"
#: The message of the merge revision ``flask connectwise migrations merge`` writes.
MERGE_MESSAGE = "merge connectwise"
#: Tables the host's ``flask db migrate`` leaves alone (the extension's own revisions own them).
TABLE_PREFIX = "connectwise_"

_MERGE_HINT = (
    "flask-connectwise: the migrations have two heads (yours and the 'connectwise' branch: {heads}). "
    "Run 'flask connectwise migrations merge' once, then 'flask db upgrade'."
)


def versions_path() -> str:
    """Directory holding the extension's Alembic revisions."""
    return str(VERSIONS)


def _host_versions(config: Any) -> str:
    script_location = config.get_main_option("script_location") or "migrations"
    return os.path.join(script_location, "versions")


def add_version_location(config: Any) -> Any:
    """Add the extension's revisions to an Alembic ``Config``'s ``version_locations``."""
    locations = config.get_main_option("version_locations")
    current = locations.split(os.pathsep) if locations else [_host_versions(config)]
    if versions_path() not in current:
        current.append(versions_path())
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_path_separator", "os")  # its name before Alembic 1.16
    config.set_main_option("version_locations", os.pathsep.join(current))
    return config


def unmerged_heads(config: Any) -> list[str]:
    """The script's heads when the ``connectwise`` branch is not yet merged into the host's
    history (host heads first), else ``[]``."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    heads = list(script.get_heads())
    if len(heads) < 2:
        return []
    ours = {rev.revision for rev in script.walk_revisions() if BRANCH in rev.branch_labels}
    branch = {h for h in heads if _in_branch(script, h, ours)}
    if not branch:
        return []
    return [h for h in heads if h not in branch] + sorted(branch)


def _in_branch(script: Any, head: str, roots: set[str]) -> bool:
    return any(rev.revision in roots for rev in script.iterate_revisions(head, "base"))


def merge(config: Any) -> str | None:
    """Write the merge revision into the host's versions folder; its path, or ``None`` when
    there is nothing to merge."""
    from alembic.script import ScriptDirectory
    from alembic.util import rev_id

    heads = unmerged_heads(config)
    if not heads:
        return None
    script = ScriptDirectory.from_config(config)
    folders = [os.path.dirname(str(script.get_revision(h).path)) for h in heads]
    host_dir = next((f for f in folders if f != versions_path()), _host_versions(config))
    written = script.generate_revision(
        rev_id(), MERGE_MESSAGE, refresh=True, head=heads, version_path=host_dir, config=config
    )
    return None if written is None else str(written.path)


def _exclude_our_tables(previous: Callable[..., bool] | None) -> Callable[..., bool]:
    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        if str(getattr(table, "name", "")).startswith(TABLE_PREFIX):
            return False
        return previous(obj, name, type_, reflected, other) if previous else True

    include_object.connectwise = True  # type: ignore[attr-defined]
    return include_object


def _into_host_versions(previous: Callable[..., None] | None) -> Callable[..., None]:
    """``process_revision_directives``: a revision the host writes (``flask db migrate`` /
    ``revision``) goes into the host's versions folder, never into the installed package, also
    when its parent is the extension's head (a new app whose history starts after ``cw000N``)."""

    def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
        if previous:
            previous(context, revision, directives)
        elif _empty_autogenerate(context, directives):
            # Flask-Migrate's env.py installs this rule only when no hook is set: keep it.
            directives[:] = []
            logging.getLogger("alembic.env").info("No changes in schema detected.")
        host = os.path.abspath(_host_versions(context.config))
        for script in directives:
            path = getattr(script, "version_path", None)
            if path is None or os.path.abspath(path) == versions_path():
                script.version_path = host

    process_revision_directives.connectwise = True  # type: ignore[attr-defined]
    return process_revision_directives


def _empty_autogenerate(context: Any, directives: list[Any]) -> bool:
    autogenerate = getattr(getattr(context.config, "cmd_opts", None), "autogenerate", False)
    ops = getattr(directives[0], "upgrade_ops", None) if directives else None
    return bool(autogenerate) and ops is not None and ops.is_empty()


def _script_exists(config: Any) -> bool:
    location = config.get_main_option("script_location")
    return bool(location) and os.path.isdir(os.path.join(location, "versions"))


def _configure(config: Any) -> Any:
    add_version_location(config)
    try:
        from flask import current_app

        args = current_app.extensions["migrate"].configure_args
    except (RuntimeError, KeyError, AttributeError):
        args = None
    if args is not None and not getattr(args.get("include_object"), "connectwise", False):
        args["include_object"] = _exclude_our_tables(args.get("include_object"))
    if not _script_exists(config):  # before ``flask db init``: nothing to check yet
        return config
    if args is not None:
        directives = args.get("process_revision_directives")
        if not getattr(directives, "connectwise", False):
            args["process_revision_directives"] = _into_host_versions(directives)
        # Run env.py for a plain ``flask db revision`` too, so the hook above sees it.
        config.set_main_option("revision_environment", "true")
    if not _merging():
        heads = unmerged_heads(config)
        if heads:
            click.echo(_MERGE_HINT.format(heads=", ".join(heads)), err=True)
    return config


def _merging() -> bool:
    from flask import g, has_app_context

    return has_app_context() and bool(g.get("connectwise_merging"))


def register(migrate: Any) -> Any:
    """Make a Flask-Migrate ``Migrate`` find the extension's revisions (see the module doc)."""
    if _configure not in migrate.configure_callbacks:
        migrate.configure(_configure)
    return migrate
