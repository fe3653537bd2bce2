"""``maskface serve`` (the access-control service), ``maskface keys`` (its API keys) and
``maskface events`` (its access log)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app
from maskface.cli.common import FileOption, fail, require_store, user_errors

keys_app = typer.Typer(help="Manage the service's API keys (stored hashed in the database).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DbOption = Annotated[str | None, typer.Option(
    "--db", help="Database (gallery, events, keys): an SQLite file or a postgresql:// URL; "
    "default: the config's, else the one 'maskface enroll' uses ($MASKFACE_DB or "
    "~/.local/share/maskface/gallery.db).")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML config file.")]


def _config(config: Path | None, db: str | None):
    from maskface.locations import default_db_path
    from maskface.service.config import load_config

    cfg = load_config(config)
    if db is not None:
        return cfg.with_db(db)
    legacy = Path("maskface.db")
    if cfg.db == default_db_path() and legacy.is_file():
        # the default until stop 31, left in the folder the service was started from
        typer.echo(f"note: using {cfg.db}, the store 'maskface enroll' uses; ./{legacy} (the "
                   f"service's default before) is not read unless given: --db {legacy}",
                   err=True)
    return cfg


def _keys(cfg):
    from maskface.service.auth import KeyStore

    return KeyStore(cfg.db)  # makes or migrates the store; refuses ones it did not make


@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    db: DbOption = None,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the access-control service (REST API at /v1, docs at /docs, web page at /)."""
    from maskface.errors import require_extra

    # python-multipart provides the module "multipart" in every version (newer ones also
    # "python_multipart"), so this names it for old and new installs alike
    require_extra("serve", "fastapi", "uvicorn", "multipart", doing="the service")
    import uvicorn

    from maskface.service.app import create_app
    cfg = _config(config, db)
    _check_port_free(host, port)  # before the models load, not after
    typer.echo(f"maskface service on http://{host}:{port}/  (database: {cfg.db})", err=True)
    uvicorn.run(create_app(cfg), host=host, port=port, log_level=log_level)


def _check_port_free(host: str, port: int) -> None:
    """One line now if ``host:port`` cannot be listened on, instead of uvicorn's error after
    every model has loaded."""
    import errno
    import socket

    from maskface.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            hint = {errno.EADDRINUSE: "another service on it? choose --port",
                    errno.EADDRNOTAVAIL: "not an address of this machine; choose --host",
                    errno.EACCES: "ports under 1024 need privileges; choose --port"}.get(
                        exc.errno, "choose --host or --port")
            raise InputError(f"{host}:{port}: {exc.strerror.lower()} ({hint})") from None


@keys_app.command("create")
@user_errors
def keys_create(
    role: Annotated[str, typer.Option(help="admin (enrol, delete, configure) or kiosk "
                                      "(access checks).")],
    label: Annotated[str, typer.Option(
        help="A note to tell keys apart; a kiosk key's label names its door in the access "
        "log (e.g. door-1).")] = "",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    cfg = _config(config, db)
    key, rec = _keys(cfg).create(role, label)
    typer.echo(key)
    typer.echo(f"created {rec.role} key {rec.key_id} in {cfg.db}; it is shown only this once",
               err=True)


@keys_app.command("list")
@user_errors
def keys_list(db: DbOption = None, config: ConfigOption = None) -> None:
    """List API keys (ids and roles; the keys themselves are not stored)."""
    cfg = _config(config, db)
    require_store(cfg.db)
    keys = _keys(cfg).list()
    if not keys:
        typer.echo("no API keys yet: 'maskface keys create admin' makes one", err=True)
    for k in keys:
        state = "revoked" if k.revoked else "active"
        typer.echo(f"{k.key_id}  {k.role:<6} {state:<8} {k.label}")


@keys_app.command("revoke")
@user_errors
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (8 hex digits).")],
                db: DbOption = None, config: ConfigOption = None) -> None:
    """Revoke a key by its id."""
    cfg = _config(config, db)
    require_store(cfg.db)
    if not _keys(cfg).revoke(key_id):
        fail(f"no active key with id '{key_id}'")
    typer.echo(f"revoked {key_id}")


def _when(text: str | None, option: str) -> float | None:
    """Epoch seconds from ISO 8601 (UTC when it has no offset) or epoch seconds, as the API
    takes them; a one-line error otherwise."""
    if text is None:
        return None
    import math
    from datetime import UTC, datetime

    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
        fail(f"{option} {text!r}: not a time")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: expected an ISO 8601 time (e.g. 2026-12-01T08:00:00Z) or "
             "epoch seconds")
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@app.command("events")
@user_errors
def events(
    db: DbOption = None,
    config: ConfigOption = None,
    since: Annotated[str | None, typer.Option(
        help="From this time: ISO 8601 (UTC if no offset) or epoch seconds.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (same forms).")] = None,
    person_id: Annotated[int | None, typer.Option(min=1, help="Only this person's.")] = None,
    decision: Annotated[str | None, typer.Option(help="granted or denied.")] = None,
    door: Annotated[str | None, typer.Option(
        help="Only this door's: its kiosk key's label (keys create --label), else the key's "
        "id.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Events listed (newest first).")] = 20,
    csv_file: Annotated[Path | None, FileOption(
        "--csv", help="Write every matching event, not only --limit, to this CSV file (the "
        "columns of GET /v1/events/export.csv).")] = None,
) -> None:
    """The door's access log: list recent events, or export them as CSV."""
    import csv

    from maskface.service.events import DECISIONS, EventLog, events_csv

    if decision is not None and decision not in DECISIONS:
        fail(f"--decision {decision!r}: expected granted or denied")
    filters = {"since": _when(since, "--since"), "until": _when(until, "--until"),
               "person_id": person_id, "decision": decision, "door": door}
    if filters["since"] is not None and filters["until"] is not None \
            and filters["until"] <= filters["since"]:
        fail("--until must be after --since")
    cfg = _config(config, db)
    require_store(cfg.db)
    log = EventLog(cfg.db)
    if csv_file is not None:
        csv_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = csv_file.with_name(csv_file.name + ".part")  # no half-written export left behind
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            for chunk in events_csv(log, **filters):
                f.write(chunk)
        tmp.replace(csv_file)
        with open(csv_file, newline="", encoding="utf-8") as f:
            n = sum(1 for _ in csv.reader(f)) - 1
        typer.echo(f"{n} events written to {csv_file}", err=True)
        return
    page, total = log.query(**filters, limit=limit)
    for e in page:
        d = e.to_dict()
        temp = "" if d["temperature"] is None else f"{d['temperature']:.1f} °C"
        typer.echo(f"{d['id']:>6}  {d['time_iso']}  {d['door'] or '-':<12}  {d['decision']:<7}  "
                   f"{d['person_name'] or '-':<24}  {', '.join(d['reasons']) or '-':<28}  "
                   f"{d['mask'] or '-':<14}  {temp}".rstrip())
    typer.echo(f"{len(page)} of {total} matching events shown (newest first)", err=True)
