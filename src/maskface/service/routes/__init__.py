"""The versioned API routers, one module per resource."""

#: every API route lives under this prefix; a breaking change gets /v2 beside it
API_PREFIX = "/v1"
