"""`GET /jobs/catalog`: the job types and sub types this jobd accepts (built-in and declared
in config), so a client's filters and forms list what the server knows, not what it has seen."""

from __future__ import annotations

import msgspec
from aiohttp import web

from .auth import Access
from .errors import json_response
from .keys import ENGINE
from .route_table import Route


class CatalogResponse(msgspec.Struct):
    """Every job type, and the job type each sub type belongs to."""

    job_types: list[str]
    sub_types: dict[str, str]


async def catalog(request: web.Request) -> web.Response:
    """`GET /jobs/catalog`: the accepted job types and sub types."""
    known = request.app[ENGINE].service.catalog
    sub_types = {sub: known.job_type_of(sub) or "" for sub in known.sub_types}
    return json_response(CatalogResponse(job_types=list(known.job_types), sub_types=sub_types))


CATALOG_ROUTES = [
    Route(
        "GET",
        "/jobs/catalog",
        catalog,
        Access.USER,
        "The job types and sub types this jobd accepts",
        response=CatalogResponse,
    ),
]
