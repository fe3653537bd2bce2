"""``/v1/events``: the access log, by time range, person, decision and door (admin keys
only)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, StreamingResponse

from maskface.service.deps import admin_key, door_query, get_state
from maskface.service.errors import ApiError
from maskface.service.events import events_csv, snapshot_file
from maskface.service.routes import API_PREFIX, Offset, RowId, RowIdQuery
from maskface.service.state import ServiceState

router = APIRouter(prefix=f"{API_PREFIX}/events", tags=["events"],
                   dependencies=[Depends(admin_key)])


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def event_filter(
    since: datetime | None = Query(None, description="ISO 8601 (UTC if no offset) or epoch"),
    until: datetime | None = Query(None, description="exclusive upper bound"),
    person_id: RowIdQuery = None,
    decision: Literal["granted", "denied"] | None = Query(None),
    door: str | None = Depends(door_query),
) -> dict:
    """The filters of the event routes, as :meth:`EventLog.query` keywords."""
    if since is not None and until is not None and until <= since:
        raise ApiError(422, "invalid_request", "'until' must be after 'since'")
    return {"since": _ts(since), "until": _ts(until), "person_id": person_id,
            "decision": decision, "door": door}


@router.get("", summary="Query access events, newest first")
def query_events(
    filters: dict = Depends(event_filter),
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
    state: ServiceState = Depends(get_state),
):
    events, total = state.events.query(**filters, limit=limit, offset=offset)
    return {"events": [e.to_dict() for e in events], "total": total, "limit": limit,
            "offset": offset}


# declared before /{event_id}, which would take "export.csv" for an id
@router.get("/export.csv", summary="Every matching event as CSV, newest first",
            response_class=StreamingResponse)
def export_events(filters: dict = Depends(event_filter),
                  state: ServiceState = Depends(get_state)):
    rows = events_csv(state.events, **filters)
    first = next(rows)  # the first page read now: a store error is still a JSON 503
    return StreamingResponse(
        itertools.chain([first], rows), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="access-events.csv"'})


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
    path = snapshot_file(state.config.snapshot_dir, event.snapshot)
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", f"event {event_id} has no snapshot")
    return FileResponse(path, media_type="image/jpeg")
