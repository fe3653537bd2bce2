"""The versioned API routers, one module per resource."""

from typing import Annotated

from fastapi import Path, Query

#: every API route lives under this prefix; a breaking change gets /v2 beside it
API_PREFIX = "/v1"

#: the largest row id SQLite can store (a signed 64-bit integer)
MAX_ROW_ID = 2**63 - 1

#: a path id of a stored row: out of SQLite's range is a 422, never an overflow (500)
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="row id")]
#: an optional query parameter naming a stored row (e.g. ``person_id``), bounded the same way
RowIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
#: how many rows a listing skips: bounded like an id, so SQLite never overflows
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID)]
