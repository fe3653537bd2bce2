"""The versioned API routers, one module per resource."""

from typing import Annotated

from fastapi import Path

#: every API route lives under this prefix; a breaking change gets /v2 beside it
API_PREFIX = "/v1"

#: the largest row id SQLite can store (a signed 64-bit integer)
MAX_ROW_ID = 2**63 - 1

#: a path id of a stored row: out of SQLite's range is a 422, never an overflow (500)
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="row id")]
