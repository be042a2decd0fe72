"""A pytest plugin: a real jobd for each test, in the test's event loop.

Installed with the package (the `pytest11` entry point `jobd`), so the fixtures need no
import; `-p no:jobd` turns the plugin off.

    async def test_my_service_launches_a_job(jobd_server: JobdTestServer) -> None:
        launched = await jobd_server.client.launch("EMAIL", "EMAIL_WAKE_UP", {})
        job = await jobd_server.client.wait(launched.session_id, timeout_s=10)
        assert job.status == "SUCCEEDED"

`jobd_server` listens on 127.0.0.1 on a free port with a database in a temporary folder, no
cold start and a 5 s idle timeout; `jobd_server_factory(**sections)` starts one with other
settings, given as `jobd.toml` sections, e.g. `pool={"cold_start_s": 30}`, and with
`clock=FakeClock()` on a clock the test moves (`await clock.advance(30)`). Both stop their
servers when the test ends. The fixtures are async (pytest-asyncio); module imports stay
light so the plugin costs nothing in projects that do not use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

# Re-exported for the tests that use the fixtures: `jobd_server_factory(clock=FakeClock())`.
from .clock import FakeClock

if TYPE_CHECKING:
    from .client import JobdClient
    from .clock import Clock
    from .config import Settings
    from .http.serve import Running
    from .server import JobdServer
    from .workers.handlers import Handler


def _async_fixture(function: Callable[..., Any]) -> Any:
    """A fixture that pytest-asyncio runs in strict mode too (plain, without pytest-asyncio)."""
    try:
        from pytest_asyncio import fixture
    except ImportError:  # pragma: no cover - anyio's pytest plugin also runs async fixtures
        return pytest.fixture(function)
    return fixture(function)


# Test-friendly defaults: any free port on loopback, no cold start, workers that stop soon,
# no fsync (the database is thrown away) and a short grace period at shutdown.
TEST_SETTINGS: dict[str, dict[str, Any]] = {
    "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_s": 1.0},
    "storage": {"durability": "normal"},
    "pool": {"cold_start_s": 0.0, "idle_timeout_s": 5.0},
}

__all__ = [
    "TEST_SETTINGS",
    "FakeClock",
    "JobdServerFactory",
    "JobdTestServer",
    "running_for_a_test",
    "server_settings",
]


@dataclass(frozen=True)
class JobdTestServer:
    """A jobd started for a test: its URL, a ready client, the engine and its folder."""

    url: str
    client: JobdClient
    server: JobdServer
    settings: Settings
    folder: Path


class JobdServerFactory(Protocol):
    """`jobd_server_factory`: start a jobd with these `jobd.toml` sections merged in."""

    async def __call__(
        self,
        *,
        handlers: Mapping[str, Handler] | None = None,
        token: str | None = None,
        clock: Clock | None = None,
        **sections: Any,
    ) -> JobdTestServer:
        """Start a server; `handlers` add Python handlers, `token` authenticates its client,
        `clock` (a `FakeClock`) runs its cold starts, timeouts and schedules."""
        ...


def server_settings(folder: Path, sections: Mapping[str, Any]) -> dict[str, Any]:
    """The settings mapping for a test server in `folder`: the test defaults, then `sections`.

    A section given as a mapping is merged into the defaults (so `pool={"EMAIL": {...}}`
    keeps the default pool values); anything else replaces it.
    """
    raw: dict[str, Any] = {
        **{name: dict(values) for name, values in TEST_SETTINGS.items()},
        "email": {"outbox": str(folder / "outbox")},
        "reports": {"folder": str(folder / "reports")},
    }
    raw["storage"]["db"] = str(folder / "jobd.db")
    for name, value in sections.items():
        if isinstance(value, Mapping) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    return raw


@contextlib.asynccontextmanager
async def running_for_a_test(
    settings: Settings, handlers: Mapping[str, Handler] | None, clock: Clock | None
) -> AsyncIterator[Running]:
    """`running`, whose stop also ends on a `FakeClock` the test no longer moves.

    A stop gives running jobs the grace period, and a handler that ignores its cancel a few
    seconds more, on the server's clock: a fake clock is moved on here, as fast as real time
    passes, until the stop is over. Else the test's teardown would wait for it for ever; and
    faster, a job doing real work would be cut short of the grace it has on a real clock.
    """
    from .http.serve import running

    serving = running(settings, clock=clock, handlers=handlers)
    jobd = await serving.__aenter__()
    try:
        yield jobd
    finally:
        stopping = asyncio.ensure_future(serving.__aexit__(None, None, None))
        while isinstance(clock, FakeClock) and not stopping.done():
            await asyncio.wait([stopping], timeout=_STOP_STEP_S)
            if not stopping.done():  # not a step more than the stop took
                await clock.advance(_STOP_STEP_S)
        await stopping


_STOP_STEP_S = 0.05  # a fake clock moves this far each time as much real time has passed


@_async_fixture
async def jobd_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[JobdServerFactory]:
    """Start jobd servers with the settings a test needs; all are stopped when it ends."""
    from .client import JobdClient
    from .config import from_dict

    async with contextlib.AsyncExitStack() as stack:

        async def start(
            *,
            handlers: Mapping[str, Handler] | None = None,
            token: str | None = None,
            clock: Clock | None = None,
            **sections: Any,
        ) -> JobdTestServer:
            folder = tmp_path_factory.mktemp("jobd")
            settings = from_dict(server_settings(folder, sections))
            jobd = await stack.enter_async_context(running_for_a_test(settings, handlers, clock))
            client = JobdClient(jobd.url, token)
            stack.push_async_callback(client.close)  # closed before its server stops
            return JobdTestServer(jobd.url, client, jobd.server, settings, folder)

        yield start


@_async_fixture
async def jobd_server(jobd_server_factory: JobdServerFactory) -> JobdTestServer:
    """A real jobd with test-friendly settings and a ready client, stopped after the test."""
    return await jobd_server_factory()
