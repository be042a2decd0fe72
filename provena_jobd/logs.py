"""Logging setup for `jobd serve`: text or one JSON object per line, secrets redacted."""

from __future__ import annotations

import json
import logging
import time
from typing import Literal

from aiohttp.http_exceptions import HttpProcessingError

from .redaction import redact

LogFormat = Literal["text", "json"]
# Attributes every LogRecord has; anything else was passed in `extra` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, `action` and other extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter: any secret of the configuration in the output becomes <redacted>."""

    def __init__(self, inner: logging.Formatter, secrets: set[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, secrets redacted."""
        return redact(self.inner.format(record), self.secrets)


def formatter(log_format: LogFormat, secrets: set[str] | None = None) -> logging.Formatter:
    """The formatter for `--log-format`, redacting `secrets` when there are any."""
    inner: logging.Formatter = (
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    return RedactingFormatter(inner, secrets) if secrets else inner


def configure(level: str, log_format: LogFormat = "text", secrets: set[str] | None = None) -> None:
    """Log to stderr at `level` in `log_format`, malformed requests reduced to one line."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format, secrets))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger("aiohttp.server").addFilter(ClientErrorFilter())
