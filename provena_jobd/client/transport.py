"""HTTP to one jobd: one aiohttp session, requests that raise the client's errors, streams."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self

import aiohttp
import msgspec

from ..settings import DEFAULT_URL
from .errors import ConnectionFailed, refusal

if TYPE_CHECKING:
    from .events import EventStream


class Transport:
    """HTTP to one jobd: the session, one request, one stream; `async with` closes it."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = {"Accept": "application/json", "User-Agent": "jobd-client"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[EventStream] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close open event streams and the HTTP session; the client can be used again."""
        for stream in list(self._streams):
            await stream.aclose()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session, created on first use (inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: msgspec.Struct | None = None,
        timeout_s: float | None = None,
    ) -> bytes:
        """Send one request; the body of a 2xx answer, or the exception for an error."""
        content, _ = await self._exchange(
            method, path, params=params, body=body, timeout_s=timeout_s
        )
        return content

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: msgspec.Struct | None = None,
        timeout_s: float | None = None,
    ) -> tuple[bytes, Mapping[str, str]]:
        """`_call`, also returning the answer's headers (looked up in any case, as aiohttp's
        are): a launch's say whether it was replayed."""
        data = None if body is None else msgspec.json.encode(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        try:
            async with self.session().request(
                method,
                self.url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
            ) as response:
                content = await response.read()
                status = response.status
                answer_headers = response.headers
                reason, content_type = response.reason or "", response.content_type
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"cannot reach jobd at {self.url}: {_reason(exc)}") from exc
        except TimeoutError as exc:
            raise ConnectionFailed(
                f"jobd at {self.url} did not answer {method} {path} within {timeout.total:g} s"
            ) from exc
        # jobd answers every route this client calls with JSON: anything else, an error or a
        # page, comes from something that is not jobd.
        if status >= 400 or content_type != "application/json":
            raise refusal(self.url, f"{method} {path}", status, reason, content_type, content)
        return content, answer_headers

    async def _open_stream(self, path: str) -> aiohttp.ClientResponse:
        """Open a streaming GET (no read timeout); raises as `_call` does."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s, sock_read=None)
        try:
            response = await self.session().get(self.url + path, timeout=timeout)
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"cannot reach jobd at {self.url}: {_reason(exc)}") from exc
        if response.status >= 400:
            content = await response.read()
            response.release()
            raise refusal(
                self.url,
                f"GET {path}",
                response.status,
                response.reason or "",
                response.content_type,
                content,
            )
        return response


def _reason(error: BaseException) -> str:
    """An aiohttp error as a short phrase."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return error.strerror or str(error.os_error)
    return str(error) or type(error).__name__
