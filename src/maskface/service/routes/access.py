"""``/v1/access/check`` (the kiosk's decision) and ``/v1/temperature`` (sensor readings)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from maskface.results import Face
from maskface.service.auth import ApiKey
from maskface.service.decision import decide, decide_burst, door_face
from maskface.service.deps import get_state, inference_slot, kiosk_key, read_image
from maskface.service.door import door_stages
from maskface.service.errors import ApiError
from maskface.service.events import save_snapshot
from maskface.service.routes import API_PREFIX
from maskface.service.state import ServiceState
from maskface.service.temperature import PushedTemperature, check_celsius

router = APIRouter(prefix=API_PREFIX, tags=["access"], dependencies=[Depends(kiosk_key)])


@router.post("/access/check", summary="Grant or deny entry; the outcome is recorded as an event",
             dependencies=[Depends(inference_slot)])
def access_check(image: UploadFile | None = File(
                     None, description="the kiosk camera's photo (or send a burst as 'images')"),
                 images: list[UploadFile] | None = File(
                     None, description="a burst of frames of the person at the door; one "
                                       "decision is made over the best of them"),
                 temperature: float | None = Form(
                     None, description="body temperature in °C; else the sensor's latest"),
                 key: ApiKey = Depends(kiosk_key),
                 state: ServiceState = Depends(get_state)):
    # A bad reading is refused before any model runs.
    temp = check_celsius(temperature) if temperature is not None else None
    uploads = ([image] if image is not None else []) + list(images or [])
    if not uploads:
        raise ApiError(422, "invalid_request", "send the kiosk photo as 'image' or a burst as "
                                                "'images'")
    limit = state.config.limits.max_photos
    if len(uploads) > limit:
        raise ApiError(413, "payload_too_large",
                       f"{len(uploads)} frames sent; at most {limit} per access check")
    imgs = [read_image(u, state, "images" if images else "image") for u in uploads]
    policy, _ = state.door_policy(key.door)
    stages = door_stages(state.engine.pipeline.detector.name)
    burst = len(imgs) > 1
    results = []
    for img in imgs:
        # Detection, mask and quality on every face of every frame; embedding, identity and
        # liveness only on the faces the decision rests on (prepare below): the person at the
        # door of a single photo, the chosen frames of a burst. Other faces are only counted
        # and reported as ignored, so a crowd behind the kiosk costs no recognition.
        result = state.engine.analyze(img, embed=False)
        stages.quality.assess(result.image, result.faces)
        results.append(result)
    if temp is not None:
        temp_source = "request"
    else:
        reading = state.temperature.read(key.door)  # this door's sensor, never another's
        temp, temp_source = (reading.celsius, reading.source) if reading else (None, None)

    def prepare(chosen: dict[int, Face]) -> None:
        for i, face in chosen.items():
            image = results[i].image
            state.engine.embed(image, [face])
            state.people.identify([face], policy.match_threshold)
            if stages.liveness is not None:
                stages.liveness.check(image, [face])

    if not burst:
        result = results[0]
        face, _ = door_face(result.faces, result.shape)
        groups: list[str] = []
        if face is not None:
            prepare({0: face})
            if face.identity and face.identity.known:
                groups = state.people.groups_of(face.identity.person_id)
        decision = decide(result.faces, policy, temp, groups, result.shape)
    else:
        decision = decide_burst([(r.faces, r.shape) for r in results], policy, temp,
                                state.people.groups_of, prepare)
    # The snapshot is the frame the decision rests on (the best frame of a burst).
    used = (decision.evidence or {}).get("used") or [0]
    best = results[used[0]]
    snapshot = (save_snapshot(best.image, state.config.snapshot_dir)
                if state.config.snapshots.enabled else None)
    face = decision.face
    ident = face.identity if face is not None else None
    event = state.events.record(
        decision.decision, list(decision.reasons),
        person_id=ident.person_id if ident is not None and ident.known else None,
        person_name=ident.name if ident is not None and ident.known else None,
        temperature=temp, mask=face.mask.label if face is not None and face.mask else None,
        score=ident.score if ident is not None else None, faces=len(best.faces),
        snapshot=snapshot,
        liveness=face.liveness.score if face is not None and face.liveness else None,
        door=key.door)
    state.metrics.decisions.inc(key.door, decision.decision)
    for r in decision.reasons:
        state.metrics.reasons.inc(key.door, r)
    body = decision.to_dict()
    body.update(event_id=event.id, time=event.time, door=event.door,
                temperature_source=temp_source,
                faces=_faces_shown(best.faces, ident), frames=len(results))
    return body


def _faces_shown(faces: list[Face], judged) -> list[dict]:
    """The frame's faces for the answer, named only as the decision names its person: a face
    the gate refused (blurred, too small), or a door with two people, is identified by no one,
    so neither its name nor a burst frame's own answer goes back to the kiosk."""
    out = [f.to_dict() for f in faces]
    for d in out:
        if d["identity"] is not None:
            d["identity"] = judged.to_dict() if judged is not None else None
    return out


class Reading(BaseModel):
    celsius: float = Field(..., description="body temperature in °C")
    sensor: str = Field("sensor", max_length=64, pattern=r"^[\w.\-]+$")


@router.post("/temperature", summary="A door's temperature sensor pushes its latest reading "
             "(the door: its key's label)")
def push_temperature(reading: Reading, key: ApiKey = Depends(kiosk_key),
                     state: ServiceState = Depends(get_state)):
    if not isinstance(state.temperature, PushedTemperature):
        raise ApiError(409, "conflict", "the temperature source is not 'push' in the config")
    return state.temperature.push(reading.celsius, reading.sensor, key.door).to_dict()


@router.get("/temperature", summary="The reading an access check at this key's door would use "
            "now")
def get_temperature(key: ApiKey = Depends(kiosk_key), state: ServiceState = Depends(get_state)):
    reading = state.temperature.read(key.door)
    return {"reading": reading.to_dict() if reading else None, "door": key.door}
