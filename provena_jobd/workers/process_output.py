"""What the worker processes jobd starts write: each line of their stdout and stderr, logged
with the worker's id, every secret jobd knows replaced by `<redacted>`.

A worker that prints its environment (or a library that logs its config) would otherwise show
the token jobd gave it. Each stream is a pipe read on jobd's event loop as data arrives (a
protocol's callback: a worker that writes a lot never finds the pipe full and stalls), split
into lines of at most `MAX_LINE_BYTES` (the rest of a longer line is dropped and counted, so
memory stays bounded whatever a worker writes), and read to its end, so what a worker wrote
just before it exited or crashed is still logged.

The pipes are jobd's own, handed to the process as plain file descriptors, not asyncio's
`stdout=PIPE`: with those, the process's `wait()` also waits for the pipes to close, and a
child the worker left behind (which inherits them) would hang jobd's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Set

from ..redaction import redact, redact_cut

log = logging.getLogger(__name__)

# A line longer than this is logged cut, with how many bytes were left out.
MAX_LINE_BYTES = 16 * 1024
STREAMS = ("stdout", "stderr")


class LineSplitter:
    """Splits a byte stream into lines of at most `limit` bytes, counting what each loses."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self.limit = limit
        self._line = bytearray()
        self._cut = 0

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        """The lines `data` completes, each with how many of its bytes were cut off."""
        lines = []
        view = memoryview(data)  # slices without copying: a long line is mostly dropped
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._keep(view[start:end])
            lines.append(self._take())
            start = end + 1
        self._keep(view[start:])
        return lines

    def end(self) -> list[tuple[bytes, int]]:
        """The last line, if the stream ended without a newline."""
        return [self._take()] if self._line or self._cut else []

    def _keep(self, piece: memoryview) -> None:
        room = max(0, self.limit - len(self._line))
        self._line += piece[:room]
        self._cut += max(0, len(piece) - room)

    def _take(self) -> tuple[bytes, int]:
        line, cut = bytes(self._line), self._cut
        self._line.clear()
        self._cut = 0
        return (line if cut else line.removesuffix(b"\r")), cut


def shown_line(line: bytes, cut: int, secrets: Set[str]) -> str:
    """A worker's output line as jobd logs it: decoded, secrets redacted, a cut said."""
    text = line.decode("utf-8", "replace")
    if not cut:
        return redact(text, secrets)
    # The cut may fall inside a secret: its beginning must not show either.
    return f"{redact_cut(text, secrets)} [{cut} more bytes not shown]"


class OutputRelay(asyncio.Protocol):
    """Logs one stream of one worker process, line by line and redacted, as data arrives."""

    def __init__(self, worker_id: str, stream: str, secrets: Set[str]) -> None:
        self.worker_id = worker_id
        self.stream = stream
        self.secrets = secrets
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lines = LineSplitter()
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport, to close it if the stream never ends."""
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Log each line `data` completes."""
        for line, cut in self._lines.feed(data):
            self._log(line, cut)

    def connection_lost(self, exc: Exception | None) -> None:
        """The stream ended (or was closed): log its last line, if unfinished."""
        for line, cut in self._lines.end():
            self._log(line, cut)
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        """Stop reading (what was read is still logged)."""
        if self._transport is not None:
            self._transport.close()

    def _log(self, line: bytes, cut: int) -> None:
        if not log.isEnabledFor(logging.INFO):
            return  # `--log-level WARNING`: no need to decode and redact a chatty worker
        log.info(
            "%s %s: %s",
            self.worker_id,
            self.stream,
            shown_line(line, cut, self.secrets),
            extra={"action": "worker_output", "worker_id": self.worker_id, "stream": self.stream},
        )


class ProcessOutput:
    """The two pipes one worker process writes its stdout and stderr to, and their relays."""

    def __init__(self, relays: list[OutputRelay], write_ends: list[int]) -> None:
        self.relays = relays
        # What the process is started with, as `stdout=` and `stderr=`.
        self.stdout, self.stderr = write_ends
        self._open_ends = write_ends

    @classmethod
    async def open(cls, worker_id: str, secrets: Set[str]) -> ProcessOutput:
        """Two pipes, each read on the event loop from now on, for the process `worker_id`."""
        loop = asyncio.get_running_loop()
        relays: list[OutputRelay] = []
        write_ends: list[int] = []
        try:
            for stream in STREAMS:
                read_end, write_end = os.pipe()  # neither inherited: the process gets a dup
                write_ends.append(write_end)
                relays.append(await _read(loop, read_end, OutputRelay(worker_id, stream, secrets)))
        except BaseException:
            for relay in relays:
                relay.close()
            for fd in write_ends:
                os.close(fd)
            raise
        return cls(relays, write_ends)

    def started(self) -> None:
        """The process has its own copies of the write ends (or never started): close jobd's,
        so the streams end when the process's do."""
        # Once only: a second close could hit a file opened since under the same number.
        ends, self._open_ends = self._open_ends, []
        for fd in ends:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def done(self) -> bool:
        """Whether both streams were read to their end."""
        return all(relay.closed.done() for relay in self.relays)

    async def ended(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` (wall clock) for both streams to end, every line logged; a
        child the process left behind may hold them open for ever (reading goes on)."""
        pending = [relay.closed for relay in self.relays if not relay.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

    async def finish(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` (wall clock) for both streams to end, then stop reading."""
        await self.ended(timeout_s)
        for relay in self.relays:
            relay.close()
        await asyncio.gather(*(relay.closed for relay in self.relays))


async def _read(loop: asyncio.AbstractEventLoop, read_end: int, relay: OutputRelay) -> OutputRelay:
    """Have the event loop read the pipe `read_end` into `relay` from now on."""
    reader = os.fdopen(read_end, "rb", buffering=0)
    try:
        await loop.connect_read_pipe(lambda: relay, reader)
    except BaseException:
        reader.close()
        raise
    return relay
