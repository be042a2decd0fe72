"""Handlers that deployments plug in through `[jobs.<SUB_TYPE>]`: Python callables and webhooks."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import aiohttp
import msgspec

from ..config import JobRoute, Settings
from ..errors import ConfigError, JobFailed
from .handlers import Handler, JobContext, Payload, Result

RESPONSE_EXCERPT = 500


def load_callable(spec: str, where: str) -> Handler:
    """Import `package.module:function`, which must be an async function."""
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: cannot load callable {spec!r}: {exc}") from None
    if not inspect.iscoroutinefunction(function):
        raise ConfigError(f"{where}: {spec} must be an async function (context, payload)")
    handler: Handler = function
    return handler


def webhook_handler(route: JobRoute) -> Handler:
    """POST the job as JSON to `route.url`; a 2xx JSON object answer is the result."""
    url = route.url
    assert url is not None

    async def call_webhook(context: JobContext, payload: Payload) -> Result:
        """Call the webhook once; anything but a 2xx JSON object fails the job."""
        body = {
            "session_id": context.session_id,
            "username": context.username,
            "batch_id": context.batch_id,
            "job_type": context.job_type,
            "job_sub_type": context.job_sub_type,
            "attempt": context.attempt,
            "payload": payload,
        }
        timeout = aiohttp.ClientTimeout(total=route.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=body) as response,
            ):
                text = await response.text()
                status = response.status
        except TimeoutError:
            raise JobFailed(
                f"the webhook {url} did not answer within {route.timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise JobFailed(f"cannot call the webhook {url}: {exc}") from None
        excerpt = text[:RESPONSE_EXCERPT]
        if not 200 <= status < 300:
            raise JobFailed(f"the webhook {url} answered {status}: {excerpt}")
        try:
            result: Any = msgspec.json.decode(text)
        except msgspec.DecodeError:
            raise JobFailed(
                f"the webhook {url} answered {status} without JSON: {excerpt}"
            ) from None
        if not isinstance(result, dict):
            raise JobFailed(f"the webhook {url} answered {status} with JSON that is not an object")
        return result

    return call_webhook


def configured_handlers(settings: Settings) -> dict[str, Handler]:
    """The handlers `[jobs.*]` routes to a callable or a webhook (built-ins stay as they are)."""
    handlers: dict[str, Handler] = {}
    for sub_type, route in settings.jobs.items():
        if route.handler == "python":
            assert route.callable is not None
            handlers[sub_type] = load_callable(route.callable, f"[jobs.{sub_type}]")
        elif route.handler == "webhook":
            handlers[sub_type] = webhook_handler(route)
    return handlers
