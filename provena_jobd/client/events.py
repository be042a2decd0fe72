"""`EventStream`: server-sent job changes from `GET /jobs/user/events`, as `Job`s."""

from __future__ import annotations

from types import TracebackType

import aiohttp
import msgspec

from ..models import Job
from .errors import ConnectionFailed
from .transport import Transport, _reason


class EventStream:
    """Server-sent job changes from `GET /jobs/user/events`, as `Job`s; an async iterator."""

    def __init__(self, client: Transport) -> None:
        self._client = client
        self._response: aiohttp.ClientResponse | None = None
        self._buffer = b""
        self._lines: list[bytes] = []
        self._event = ""
        self._data: list[bytes] = []
        self._ended = False

    async def open(self) -> EventStream:
        """Connect and wait until jobd has subscribed this stream (changes after it are seen)."""
        if self._response is None and not self._ended:
            self._response = await self._client._open_stream("/jobs/user/events")
            self._client._streams.add(self)
            # jobd subscribes, then sends `retry:` and a `: connected` comment as one block.
            while (line := await self._line()) is not None and line:
                pass
        return self

    async def aclose(self) -> None:
        """Disconnect (the iterator then ends)."""
        self._ended = True
        self._client._streams.discard(self)
        if self._response is not None:
            response, self._response = self._response, None
            response.close()

    async def __aenter__(self) -> EventStream:
        return await self.open()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Job:
        """The next changed job; ends when jobd closes the stream (it is shutting down)."""
        await self.open()
        while True:
            line = await self._line()
            if line is None:
                await self.aclose()
                raise StopAsyncIteration
            if line:
                self._field(line)
                continue
            # A blank line dispatches the event gathered so far.
            event, data = self._event or "message", b"\n".join(self._data)
            self._event, self._data = "", []
            if event == "job" and data:
                return msgspec.json.decode(data, type=Job)

    def _field(self, line: bytes) -> None:
        """One `field: value` line of the SSE format; comments (`:`) are skipped."""
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"event":
            self._event = value.decode()
        elif name == b"data":
            self._data.append(value)

    async def _line(self) -> bytes | None:
        """The next line (without its end of line), or None at the end of the stream.

        Lines are split here rather than with `readline`, which refuses lines over 128 KiB
        (a job with a large payload).
        """
        while not self._lines:
            if self._response is None:
                return None
            try:
                chunk = await self._response.content.readany()
            except aiohttp.ClientError as exc:
                await self.aclose()
                raise ConnectionFailed(f"the event stream broke: {_reason(exc)}") from exc
            if not chunk:
                return None
            *complete, self._buffer = (self._buffer + chunk).split(b"\n")
            self._lines.extend(complete)
        return self._lines.pop(0).removesuffix(b"\r")
