"""``/v1/access/check`` (the kiosk's decision) and ``/v1/temperature`` (sensor readings)."""

from __future__ import annotations

import logging
import uuid

import cv2
from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from maskface.service.decision import decide
from maskface.service.deps import get_state, inference_slot, kiosk_key, read_image
from maskface.service.errors import ApiError
from maskface.service.routes import API_PREFIX
from maskface.service.state import ServiceState
from maskface.service.temperature import PushedTemperature, check_celsius

log = logging.getLogger(__name__)
router = APIRouter(prefix=API_PREFIX, tags=["access"], dependencies=[Depends(kiosk_key)])


@router.post("/access/check", summary="Grant or deny entry; the outcome is recorded as an event",
             dependencies=[Depends(inference_slot)])
def access_check(image: UploadFile = File(..., description="the kiosk camera's photo"),
                 temperature: float | None = Form(
                     None, description="body temperature in °C; else the sensor's latest"),
                 state: ServiceState = Depends(get_state)):
    # A bad reading is refused before any model runs.
    temp = check_celsius(temperature) if temperature is not None else None
    img = read_image(image, state)
    policy = state.policy
    result = state.engine.analyze(img)
    state.people.identify(result.faces, policy.match_threshold)
    if temp is not None:
        temp_source = "request"
    else:
        reading = state.temperature.read()
        temp, temp_source = (reading.celsius, reading.source) if reading else (None, None)
    groups: list[str] = []
    if len(result.faces) == 1 and result.faces[0].identity and result.faces[0].identity.known:
        groups = state.people.groups_of(result.faces[0].identity.person_id)
    decision = decide(result.faces, policy, temp, groups)
    snapshot = None
    if state.config.snapshots.enabled:
        # The file name is generated here; nothing the client sent reaches the file system.
        snapshot = f"{uuid.uuid4().hex}.jpg"
        state.config.snapshot_dir.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(state.config.snapshot_dir / snapshot), img):
            log.warning("could not write snapshot to %s", state.config.snapshot_dir)
            snapshot = None
    face = decision.face
    ident = face.identity if face is not None else None
    event = state.events.record(
        decision.decision, list(decision.reasons),
        person_id=ident.person_id if ident is not None and ident.known else None,
        person_name=ident.name if ident is not None and ident.known else None,
        temperature=temp, mask=face.mask.label if face is not None and face.mask else None,
        score=ident.score if ident is not None else None, faces=len(result.faces),
        snapshot=snapshot)
    state.metrics.decisions.inc(decision.decision)
    for r in decision.reasons:
        state.metrics.reasons.inc(r)
    body = decision.to_dict()
    body.update(event_id=event.id, time=event.time, temperature_source=temp_source,
                faces=[f.to_dict() for f in result.faces])
    return body


class Reading(BaseModel):
    celsius: float = Field(..., description="body temperature in °C")
    sensor: str = Field("sensor", max_length=64, pattern=r"^[\w.\-]+$")


@router.post("/temperature", summary="A temperature sensor pushes its latest reading")
def push_temperature(reading: Reading, state: ServiceState = Depends(get_state)):
    if not isinstance(state.temperature, PushedTemperature):
        raise ApiError(409, "conflict", "the temperature source is not 'push' in the config")
    return state.temperature.push(reading.celsius, reading.sensor).to_dict()


@router.get("/temperature", summary="The reading an access check would use now")
def get_temperature(state: ServiceState = Depends(get_state)):
    reading = state.temperature.read()
    return {"reading": reading.to_dict() if reading else None}
