"""``maskface db``: the store's schema, and moving a whole store between back ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app
from maskface.cli.common import output_file, require_store, user_errors
from maskface.cli.serve import ConfigOption, DbOption, _config

db_app = typer.Typer(help="The store: schema migrations, export, import and retention (SQLite or "
                     "PostgreSQL).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _open(config: Path | None, db: str | None, migrate: bool = True, must_exist: bool = False):
    from maskface.storage import open_database

    cfg = _config(config, db)
    if must_exist:
        require_store(cfg.db)
    return open_database(cfg.db, migrate=migrate)


@db_app.command("migrate")
@user_errors
def migrate(db: DbOption = None, config: ConfigOption = None) -> None:
    """Create the store or bring its schema up to date (the service also does it on start)."""
    with _open(config, db, migrate=False) as store:
        before, after = store.migrate()
        typer.echo(json.dumps({"store": store.location, "backend": store.kind,
                               "schema_before": before, "schema_now": after}))


@db_app.command("export")
@user_errors
def export(
    out: Annotated[Path, typer.Argument(
        callback=output_file, help="The export file to write (JSON Lines).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write people, embeddings, API keys (hashed), policy and events to one file."""
    from maskface.storage.transfer import export_store

    with _open(config, db, must_exist=True) as store:
        counts = export_store(store, out)
    typer.echo(json.dumps({"store": store.location, "out": str(out), "rows": counts}))


@db_app.command("import")
@user_errors
def import_(
    src: Annotated[Path, typer.Argument(help="A file written by 'maskface db export'.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Load an export into an empty store (all or nothing), e.g. a new PostgreSQL database."""
    from maskface.storage.transfer import export_file, import_store

    export_file(src)  # before the store is opened (and, if new, created)
    with _open(config, db) as store:
        counts = import_store(store, src)
    typer.echo(json.dumps({"store": store.location, "imported": counts}))


@db_app.command("prune")
@user_errors
def prune(
    db: DbOption = None,
    config: ConfigOption = None,
    events_days: Annotated[float | None, typer.Option(
        min=0, help="Delete access events older than this many days (default: the config's "
        "\\[retention] events_days; 0 keeps them).")] = None,
    snapshots_days: Annotated[float | None, typer.Option(
        min=0, help="Delete snapshot photos older than this (default: the config's "
        "\\[retention] snapshots_days, 30).")] = None,
) -> None:
    """Apply the retention of access events and their snapshot photos now (the service also
    does it at start and every hour)."""
    from dataclasses import replace

    from maskface.service.events import EventLog, apply_retention

    cfg = _config(config, db)
    retention = cfg.retention
    if events_days is not None:
        retention = replace(retention, events_days=events_days)
    if snapshots_days is not None:
        retention = replace(retention, snapshots_days=snapshots_days)
    with _open(config, db, must_exist=True) as store:
        n_events, n_files = apply_retention(EventLog(store), retention, cfg.snapshot_dir)
    typer.echo(json.dumps({"store": store.location, "events_deleted": n_events,
                           "snapshots_deleted": n_files,
                           "events_days": retention.events_days,
                           "snapshots_days": retention.snapshots_days}))
