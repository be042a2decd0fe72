"""Logging setup for `jobd serve`."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class ClientErrorFilter(logging.Filter):
    """aiohttp logs a malformed request (a client's fault, answered 400) as an ERROR with a
    traceback; keep it as one INFO line instead, so real errors stand out."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite client protocol errors; pass everything else unchanged."""
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError) or (error.code or 400) >= 500:
            return True
        if not logging.getLogger().isEnabledFor(logging.INFO):
            return False
        first_line = str(error.message).strip().splitlines()[0] if error.message else ""
        record.msg = f"{record.getMessage()}: bad request: {first_line}"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno = logging.INFO
        record.levelname = "INFO"
        return True


def configure(level: str) -> None:
    """Log to stderr at `level`, with malformed requests reduced to one line."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.server").addFilter(ClientErrorFilter())
