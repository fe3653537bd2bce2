"""The access-control service: REST API, kiosk decisions, event log and web page.

Needs the ``serve`` extra (FastAPI, uvicorn). Build the app with :func:`create_app`.
"""

from __future__ import annotations


def create_app(*args, **kwargs):
    """See :func:`maskface.service.app.create_app` (imported lazily: FastAPI is optional)."""
    from maskface.service.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
