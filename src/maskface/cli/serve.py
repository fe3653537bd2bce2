"""``maskface serve`` (the access-control service) and ``maskface keys`` (its API keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app
from maskface.cli.common import fail, require_store, user_errors

keys_app = typer.Typer(help="Manage the service's API keys (stored hashed in the database).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DbOption = Annotated[str | None, typer.Option(
    "--db", help="Database (gallery, events, keys): an SQLite file or a postgresql:// URL; "
    "default: the config's, else maskface.db.")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML config file.")]


def _config(config: Path | None, db: str | None):
    from maskface.service.config import load_config

    cfg = load_config(config)
    return cfg.with_db(db) if db is not None else cfg


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
    try:
        import uvicorn

        from maskface.service.app import create_app
    except ImportError as exc:
        from maskface.errors import InputError

        raise InputError(f"the service needs the 'serve' extra ({exc.name} missing): "
                         "pip install 'maskface[serve]'") from None
    cfg = _config(config, db)
    _check_port_free(host, port)  # before the models load, not after
    typer.echo(f"maskface service on http://{host}:{port}/  (database: {cfg.db})", err=True)
    uvicorn.run(create_app(cfg), host=host, port=port, log_level=log_level)


def _check_port_free(host: str, port: int) -> None:
    """One line now if ``host:port`` cannot be listened on, instead of uvicorn's error after
    every model has loaded."""
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
            raise InputError(f"{host}:{port}: {exc.strerror.lower()} (another service on "
                             "it? choose --port)") from None


@keys_app.command("create")
@user_errors
def keys_create(
    role: Annotated[str, typer.Option(help="admin (enrol, delete, configure) or kiosk "
                                      "(access checks).")],
    label: Annotated[str, typer.Option(help="A note to tell keys apart.")] = "",
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
