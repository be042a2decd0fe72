"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web

from ..identity import Identity
from ..server import JobdServer

SERVER = web.AppKey("server", JobdServer)
CALLER = web.RequestKey("caller", Identity)  # who the request acts as
