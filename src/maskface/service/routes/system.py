"""Health, metrics and the access policy."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from maskface.errors import InputError
from maskface.service.config import Policy
from maskface.service.deps import admin_key, door_query, get_state
from maskface.service.errors import ApiError
from maskface.service.routes import API_PREFIX
from maskface.service.state import ServiceState

router = APIRouter(prefix=API_PREFIX, tags=["system"])


@router.get("/health", summary="Liveness and readiness (no key needed)")
def health(state: ServiceState = Depends(get_state)):
    return {"status": "ok", "version": state.version, "models": state.engine.describe(),
            "match_thresholds": state.people.thresholds(state.policy.match_threshold),
            "people": state.people.count(), "uptime_s": round(state.uptime_s, 1),
            "store": state.database.describe()}


def metrics(state: ServiceState = Depends(get_state)) -> PlainTextResponse:
    """Prometheus text format (mounted at ``/metrics``, outside ``/v1``, where scrapers look)."""
    gauges = {"maskface_people_enrolled": ("Enrolled people", float(state.people.count())),
              "maskface_uptime_seconds": ("Seconds since start", state.uptime_s)}
    return PlainTextResponse(state.metrics.render(gauges),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


class PolicyBody(BaseModel):
    # PUT replaces the whole policy: a misspelt field must be a 422, not a setting silently
    # back at its default; strict, so "yes" is not taken for true
    model_config = ConfigDict(extra="forbid", strict=True)

    mask_required: bool = True
    temperature_threshold: float = Field(37.5, ge=30.0, le=45.0)
    require_temperature: bool = False
    match_threshold: float | None = Field(None, gt=0.0, le=1.0)
    allowed_groups: list[str] = Field(default_factory=list)
    liveness_required: bool = True
    liveness_threshold: float | None = Field(None, ge=0.0, le=1.0)
    single_person_strict: bool = False
    min_face_size: float = Field(64.0, ge=0.0, le=4096.0)
    quality_required: bool = True




@router.get("/policy", summary="The access policy in force (the building's, or one door's)",
            dependencies=[Depends(admin_key)])
def get_policy(door: str | None = Depends(door_query), state: ServiceState = Depends(get_state)):
    policy, source = state.door_policy(door)
    body = {"policy": policy.to_dict(), "source": source}
    if door is None:
        body["doors"] = {d: p.to_dict() for d, p in state.settings.door_policies().items()}
    else:
        body["door"] = door
    return body


@router.put("/policy", summary="Replace the building's (or one door's) access policy (stored; "
            "survives restarts)", dependencies=[Depends(admin_key)])
def put_policy(body: PolicyBody, door: str | None = Depends(door_query),
               state: ServiceState = Depends(get_state)):
    try:
        policy = Policy(**body.model_dump())
    except InputError as exc:  # the rules a body's types cannot say (allowed_groups)
        raise ApiError(422, "invalid_request", str(exc)) from None
    state.settings.set_policy(policy, door)
    return get_policy(door, state)


@router.delete("/policy", summary="The building: back to the config file's policy; a door: "
               "back to the building's", dependencies=[Depends(admin_key)])
def reset_policy(door: str | None = Depends(door_query), state: ServiceState = Depends(get_state)):
    state.settings.reset_policy(door)
    return get_policy(door, state)
