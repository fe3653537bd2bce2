"""Request dependencies shared by the routers: the API-key check and image uploads."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from fastapi import Depends, Query, Request, UploadFile
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from maskface.errors import InputError
from maskface.io import decode_image
from maskface.service.auth import ADMIN, KIOSK, MAX_LABEL_CHARS, ApiKey, check_label
from maskface.service.errors import ApiError
from maskface.service.state import ServiceState

# auto_error=False: a missing key gets our JSON error, not FastAPI's default body.
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                           description="An API key made with `maskface keys create`.")
# the same key as a bearer token, which most HTTP clients and gateways send by default
_bearer = HTTPBearer(auto_error=False,
                     description="The same API key as `Authorization: Bearer <key>`.")


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def require(role: str) -> Callable[..., ApiKey]:
    """A dependency that admits keys whose role grants ``role`` (admin grants everything)."""

    def check(key: str | None = Depends(_key_header),
              bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
              state: ServiceState = Depends(get_state)) -> ApiKey:
        key = key or (bearer.credentials if bearer is not None else None)
        if not key:
            raise ApiError(401, "missing_api_key", "send an API key in the X-API-Key header "
                           "(or as Authorization: Bearer KEY)")
        rec = state.keys.verify(key)
        if rec is None:
            raise ApiError(401, "invalid_api_key", "API key not recognised or revoked")
        if not rec.allows(role):
            raise ApiError(403, "forbidden", f"this route needs the {role} role; "
                           f"the key has the {rec.role} role")
        return rec

    return check


admin_key = require(ADMIN)
kiosk_key = require(KIOSK)


def door_query(door: str | None = Query(
        None, max_length=MAX_LABEL_CHARS,
        description="a door: its kiosk key's label, else the key's id")) -> str | None:
    """The ``?door=`` of the policy and event routes, checked as a door's name is when a key
    is labelled: a name no door can have is a 422, not a filter that finds nothing or a
    policy that never applies."""
    if door is None:
        return None
    try:
        return check_label(door)
    except InputError as exc:
        raise ApiError(422, "invalid_request", f"door: {exc}") from None


async def inference_slot(state: ServiceState = Depends(get_state)):
    """Admit a model-running request only when an inference worker is nearly free.

    FastAPI runs plain ``def`` routes in a threadpool of ~40 threads. Without this gate, 50
    waiting access checks would each hold a thread blocked on the models, and even
    ``/v1/health`` would queue for a thread; here they wait on the event loop instead.
    """
    async with state.gate:
        yield


def read_image(upload: UploadFile, state: ServiceState, field: str = "image") -> np.ndarray:
    """Decode one uploaded image within the service's limits.

    The client's file name is only ever used in messages, never as a path.
    """
    limits = state.config.limits
    data = upload.file.read(limits.max_upload_bytes + 1)
    label = f"{field} '{upload.filename}'" if upload.filename else field
    if len(data) > limits.max_upload_bytes:
        raise ApiError(413, "payload_too_large",
                       f"{label} is larger than {limits.max_upload_mb:g} MB")
    # decode_image checks the declared size from the header before decoding anything.
    return decode_image(data, label, max_pixels=limits.max_pixels)
