"""``/v1/events``: the access log, by time range, person and decision (admin keys only)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from maskface.service.deps import admin_key, get_state
from maskface.service.errors import ApiError
from maskface.service.routes import API_PREFIX, Offset, RowId, RowIdQuery
from maskface.service.state import ServiceState

router = APIRouter(prefix=f"{API_PREFIX}/events", tags=["events"],
                   dependencies=[Depends(admin_key)])


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


@router.get("", summary="Query access events, newest first")
def query_events(
    since: datetime | None = Query(None, description="ISO 8601 (UTC if no offset) or epoch"),
    until: datetime | None = Query(None, description="exclusive upper bound"),
    person_id: RowIdQuery = None,
    decision: Literal["granted", "denied"] | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
    state: ServiceState = Depends(get_state),
):
    if since is not None and until is not None and until <= since:
        raise ApiError(422, "invalid_request", "'until' must be after 'since'")
    events, total = state.events.query(since=_ts(since), until=_ts(until), person_id=person_id,
                                       decision=decision, limit=limit, offset=offset)
    return {"events": [e.to_dict() for e in events], "total": total, "limit": limit,
            "offset": offset}


@router.get("/{event_id}", summary="One event")
def get_event(event_id: RowId, state: ServiceState = Depends(get_state)):
    event = state.events.get(event_id)
    if event is None:
        raise ApiError(404, "not_found", f"no event with id {event_id}")
    return event.to_dict()


@router.get("/{event_id}/snapshot", summary="The stored photo of an event (if snapshots are on)",
            response_class=FileResponse)
def get_snapshot(event_id: RowId, state: ServiceState = Depends(get_state)):
    event = state.events.get(event_id)
    if event is None:
        raise ApiError(404, "not_found", f"no event with id {event_id}")
    path = state.config.snapshot_dir / event.snapshot if event.snapshot else None
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", f"event {event_id} has no snapshot")
    return FileResponse(path, media_type="image/jpeg")
