"""``/v1/people``: enrol, list, get, rename, delete, add photos (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from maskface.errors import InputError
from maskface.gallery import check_name
from maskface.service.auth import ApiKey
from maskface.service.config import check_groups
from maskface.service.deps import admin_key, get_state, inference_slot, read_image
from maskface.service.errors import ApiError
from maskface.service.routes import API_PREFIX, Offset, RowId, RowIdQuery
from maskface.service.state import ServiceState

router = APIRouter(prefix=f"{API_PREFIX}/people", tags=["people"],
                   dependencies=[Depends(admin_key)])


class PersonUpdate(BaseModel):
    # a misspelt field is a 422, not silently ignored
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    groups: list[str] | None = None


def _groups(raw: str | list[str]) -> list[str]:
    """Groups (comma-separated, or the field repeated) as :func:`check_groups` tidies them;
    400 ``bad_request`` when there are too many, one is too long or holds control
    characters."""
    try:
        return list(check_groups([raw] if isinstance(raw, str) else raw))
    except InputError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _name(raw: str) -> str:
    """The gallery's checked name, or 400 ``bad_request`` (a missing, empty or blank name
    alike)."""
    try:
        return check_name(raw)
    except InputError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


_ALLOW_DUPLICATE = Form(False, description="enrol even if the face matches someone already "
                        "enrolled (recorded in the audit log)")


_ALLOW_SMALL_FACE = Form(False, description="enrol from a face under 32 px too (recognition "
                         "from it is unreliable)")


def _embeddings(photos: list[UploadFile], largest: bool, state: ServiceState,
                allow_small_face: bool = False):
    """Each photo's embedded face and the photo (its masked templates are made only once the
    duplicate check has passed), or a 4xx naming the photo that has no face, several, or one
    too small to enrol from."""
    from maskface.recognize.faces import enrolment_size_problem

    if not photos:
        raise ApiError(422, "invalid_request", "send at least one photo")
    if len(photos) > state.config.limits.max_photos:
        raise ApiError(413, "too_many_photos",
                       f"{len(photos)} photos sent; at most {state.config.limits.max_photos}")
    faces, images = [], []
    for i, up in enumerate(photos, 1):
        # read_image names the file itself; single_face's messages get it from this label too.
        images.append(read_image(up, state, f"photo {i}"))
        label = f"photo {i}" + (f" '{up.filename}'" if up.filename else "")
        faces.append(state.engine.single_face(images[-1], label, largest))
        problem = enrolment_size_problem(faces[-1], label)
        if problem and not allow_small_face:
            raise ApiError(422, "face_too_small", f"{problem}; or set allow_small_face=true")
    return faces, images


@router.post("", status_code=201, summary="Enrol a person from one or more photos",
             dependencies=[Depends(inference_slot)])
def enrol(name: list[str] = Form([], description="the person's name (unique)"),
          photos: list[UploadFile] = File(..., description="photos of the person, masked or not"),
          groups: list[str] = Form([], description="groups, comma-separated (staff,lab) or "
                                   "the field repeated"),
          largest: bool = Form(False, description="use the largest face of group photos"),
          allow_duplicate: bool = _ALLOW_DUPLICATE,
          allow_small_face: bool = _ALLOW_SMALL_FACE,
          key: ApiKey = Depends(admin_key),
          state: ServiceState = Depends(get_state)):
    if len(name) > 1:  # a form keeps the last of a repeated field: say so, not guess
        raise ApiError(400, "bad_request", f"one name, not {len(name)}")
    name = _name(name[0] if name else "")
    state.people.check_name_free(name)  # both before any inference
    faces, images = _embeddings(photos, largest, state, allow_small_face)
    return state.people.enrol(name, faces, _groups(groups), images,
                              state.policy.match_threshold, allow_duplicate, key.key_id)


@router.get("", summary="List enrolled people, by id")
def list_people(q: str | None = Query(None, max_length=200,
                                      description="only names containing this, any case"),
                limit: int = Query(1000, ge=1, le=10_000), offset: Offset = 0,
                state: ServiceState = Depends(get_state)):
    people, total = state.people.list(limit, offset, q)
    return {"people": people, "count": len(people), "total": total, "limit": limit,
            "offset": offset}


@router.get("/{person_id}", summary="One enrolled person")
def get_person(person_id: RowId, state: ServiceState = Depends(get_state)):
    return state.people.get(person_id)


@router.patch("/{person_id}", summary="Rename a person or change their groups")
def update_person(person_id: RowId, update: PersonUpdate,
                  state: ServiceState = Depends(get_state)):
    if update.name is None and update.groups is None:
        raise ApiError(422, "invalid_request", "send 'name' and/or 'groups'")
    if update.name is not None:
        state.people.rename(person_id, update.name.strip())
    if update.groups is not None:
        state.people.set_groups(person_id, _groups(update.groups))
    return state.people.get(person_id)


@router.delete("/{person_id}", status_code=204, summary="Delete a person and every embedding")
def delete_person(person_id: RowId, state: ServiceState = Depends(get_state)):
    state.people.delete(person_id)
    # their face photos go too; the access log keeps its records (retention prunes those)
    state.events.forget_photos(person_id, state.config.snapshot_dir)
    return Response(status_code=204)


@router.post("/{person_id}/photos", summary="Add enrolment photos to a person",
             dependencies=[Depends(inference_slot)])
def add_photos(person_id: RowId, photos: list[UploadFile] = File(...),
               largest: bool = Form(False), allow_duplicate: bool = _ALLOW_DUPLICATE,
               allow_small_face: bool = _ALLOW_SMALL_FACE,
               key: ApiKey = Depends(admin_key), state: ServiceState = Depends(get_state)):
    state.people.get(person_id)  # 404 before any inference
    faces, images = _embeddings(photos, largest, state, allow_small_face)
    return state.people.add_faces(person_id, faces, images, state.policy.match_threshold,
                                  allow_duplicate, key.key_id)


audit_router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["people"],
                         dependencies=[Depends(admin_key)])


@audit_router.get("", summary="The gallery's audit log (duplicate enrolments let through)")
def audit_log(person_id: RowIdQuery = None, limit: int = Query(100, ge=1, le=1000),
              offset: Offset = 0, state: ServiceState = Depends(get_state)):
    return state.people.audit(person_id, limit, offset)
