"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web

from ..identity import Identity
from ..server import JobdServer

ENGINE = web.AppKey("engine", JobdServer)  # the engine: everything but HTTP
CALLER = web.RequestKey("caller", Identity)  # who the request acts as
