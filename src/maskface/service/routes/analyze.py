"""``/v1/analyze``, ``/v1/identify`` and ``/v1/verify``: the pipeline over HTTP."""

from __future__ import annotations

import base64

import cv2
from fastapi import APIRouter, Depends, File, Query, UploadFile

from maskface.service.auth import ADMIN, ApiKey
from maskface.service.deps import (
    admin_key,
    get_state,
    inference_slot,
    kiosk_key,
    read_image,
)
from maskface.service.errors import ApiError
from maskface.service.routes import API_PREFIX
from maskface.service.state import ServiceState

router = APIRouter(prefix=API_PREFIX, tags=["analyse"])


def _annotated_jpeg(result) -> str:
    ok, buf = cv2.imencode(".jpg", result.plot(), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ApiError(500, "internal", "could not encode the annotated image")
    return base64.b64encode(buf.tobytes()).decode("ascii")


@router.post("/analyze", summary="Faces, mask states and (admin keys) identities in an image")
def analyze(image: UploadFile = File(..., description="JPEG/PNG/... photo"),
            annotate: bool = Query(False, description="also return an annotated JPEG (base64)"),
            key: ApiKey = Depends(kiosk_key), _slot: None = Depends(inference_slot),
            state: ServiceState = Depends(get_state)):
    """Kiosk keys get boxes and mask states only: naming people is for admin keys (and for the
    access check, which records who was named)."""
    img = read_image(image, state)
    admin = key.role == ADMIN
    result = state.engine.analyze(img, embed=admin)
    if admin:
        state.people.identify(result.faces, state.policy.match_threshold)
    body = result.to_dict()
    body.pop("source", None)
    if annotate:
        body["annotated_jpeg"] = _annotated_jpeg(result)
    return body


@router.post("/identify", summary="Who is in an image (1:N search over the gallery)")
def identify(image: UploadFile = File(...), top_k: int = Query(3, ge=1, le=20),
             _: ApiKey = Depends(admin_key), _slot: None = Depends(inference_slot),
             state: ServiceState = Depends(get_state)):
    img = read_image(image, state)
    result = state.engine.analyze(img)
    candidates = state.people.identify(result.faces, state.policy.match_threshold, k=top_k)
    faces = [dict(face.to_dict(), candidates=c) for face, c in zip(result.faces, candidates)]
    h, w = result.shape
    return {"width": w, "height": h, "faces": faces, "timings_ms": result.to_dict()["timings_ms"]}


@router.post("/verify", summary="Are two photos the same person? (1:1)")
def verify(image_a: UploadFile = File(...), image_b: UploadFile = File(...),
           largest: bool = Query(False, description="use the largest face of a group photo"),
           _: ApiKey = Depends(admin_key), _slot: None = Depends(inference_slot),
           state: ServiceState = Depends(get_state)):
    a = state.engine.single_face(read_image(image_a, state, "image_a"), "image_a", largest)
    b = state.engine.single_face(read_image(image_b, state, "image_b"), "image_b", largest)
    return state.engine.compare(a, b)
