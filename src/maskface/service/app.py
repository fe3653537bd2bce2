"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from maskface.service.config import ServiceConfig
from maskface.service.errors import install_error_handlers
from maskface.service.middleware import BodyLimitMiddleware, MetricsMiddleware
from maskface.service.routes import access, analyze, events, people, system
from maskface.service.state import ServiceState

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("maskface.service") / "static"))
#: multipart overhead allowed on top of the per-image limit (several photos per enrolment)
_BODY_SLACK = 64 * 1024

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                               "media-src 'self' blob: mediastream:; object-src 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

DESCRIPTION = """Access control for a mask-aware kiosk: enrol people, analyse photos, and decide
at the door from identity, mask and body temperature. Every route but `/v1/health` and
`/metrics` needs an API key in the `X-API-Key` header (`maskface keys create --role admin`).
Errors are JSON: `{"error": {"code": "...", "message": "..."}}`."""


def _embedder_of_store(config: ServiceConfig, db) -> ServiceConfig:
    """The config, with ``[models] embedder = "default"`` made the embedder the store's people
    were enrolled with (as the CLI does); a one-line error when it names one whose vectors
    cannot be compared with theirs."""
    from dataclasses import replace

    from maskface.errors import InputError
    from maskface.gallery import Gallery
    from maskface.recognize import SPACE_OF_EMBEDDER, embedder_for_gallery

    stored = Gallery(db).model  # an open store handed in: the probe does not close it
    want = config.models.embedder
    if not stored:
        return config
    if want == "default":
        return replace(config, models=replace(config.models,
                                              embedder=embedder_for_gallery(stored)))
    space = SPACE_OF_EMBEDDER.get(want)
    if space is not None and space != stored:
        raise InputError(f"{config.db}: its people were enrolled with '{stored}' embeddings; "
                         f"[models] embedder = '{want}' makes '{space}' ones, which cannot be "
                         f"compared (leave it at 'default' to use the store's own)")
    return config


async def _keep_retention(state: ServiceState) -> None:
    """Apply ``[retention]`` at start and every hour, off the event loop; a failure is logged
    and tried again next time, never taken down with the service."""
    from maskface.service.events import RETENTION_INTERVAL_S, apply_retention

    cfg = state.config
    if not (cfg.retention.events_days or cfg.retention.snapshots_days):
        return
    while True:
        try:
            n_events, n_files = await asyncio.to_thread(
                apply_retention, state.events, cfg.retention, cfg.snapshot_dir)
            if n_events or n_files:
                log.info("retention: deleted %d events and %d snapshot photos",
                         n_events, n_files)
        except Exception:  # noqa: BLE001  (the next round tries again)
            log.exception("retention: pruning failed")
        await asyncio.sleep(RETENTION_INTERVAL_S)


def create_app(config: ServiceConfig | None = None, engine=None) -> FastAPI:
    """Build the app. Models load once at startup (or pass a ready ``engine`` to share one)."""
    config = config or ServiceConfig()
    state = ServiceState.open(config)
    if engine is None:
        try:
            config = state.config = _embedder_of_store(config, state.database)
        except BaseException:
            state.database.close()
            raise

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from maskface.service.engine import Engine
        from maskface.service.people import People

        state.engine = engine or Engine(config.models)
        state.people = People(state.database, state.engine)
        # Two requests per inference worker: one runs the models while the next decodes its
        # upload or writes its event; the rest wait here, off the threadpool.
        state.gate = asyncio.Semaphore(2 * config.models.workers)
        if not state.keys.list():
            log.warning("no API keys in %s: create one with "
                        "'maskface keys create --role admin --db %s'", config.db, config.db)
        pruner = asyncio.create_task(_keep_retention(state))
        try:
            yield
        finally:
            pruner.cancel()
            state.people.gallery.close()
            state.database.close()

    # docs_url=None: /docs below serves Swagger UI from this package, not from a CDN, so the
    # documentation works on an offline kiosk network.
    app = FastAPI(title="maskface access control", version=state.version,
                  description=DESCRIPTION, lifespan=lifespan, docs_url=None)
    app.state.service = state
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware,
                       max_bytes=config.limits.max_upload_bytes * config.limits.max_photos
                       + _BODY_SLACK)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)

    for module in (system, analyze, people, access, events):
        app.include_router(module.router)
    app.include_router(people.audit_router)
    app.add_api_route("/metrics", system.metrics, methods=["GET"], tags=["system"],
                      summary="Prometheus metrics (no key needed)")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        # The page loads nothing from elsewhere; the policy keeps it that way (and blunts XSS).
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon.png")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
