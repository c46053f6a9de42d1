"""Log lines no client can forge: every record is one line, client text escaped.

Two formats (``FACEGATE_LOG_FORMAT``): ``text``, the usual ``time level logger: message`` with
control characters in the message escaped (``\\n`` stays two characters) and a traceback's
lines indented, so nothing a client sends can start a line that looks like a record; and
``json``, one JSON object per record (time, level, logger, message, request_id, exception),
for a log shipper: the request id of the request being served comes from a context variable
the middleware sets, so every record logged while serving it carries it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "facegate_request_id", default=None
)
"""The request being served in this task (set by `frontend.api.middleware.request_ids`)."""

FORMATS = ("text", "json")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def escape(text: str) -> str:
    """Control characters as escapes: a newline in client text cannot end the record."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """``time level logger: message`` (the middleware's messages start with the request id),
    one line per record plus an indented traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = self.formatMessage(_with_message(record, escape(record.getMessage())))
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join("    | " + escape(t) for t in trace.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def _with_message(record: logging.LogRecord, message: str) -> logging.LogRecord:
    copy = logging.makeLogRecord(record.__dict__)
    copy.message = message
    copy.asctime = logging.Formatter.formatTime(logging.Formatter(), record)
    return copy


def configure(level: str, fmt: str = "text") -> None:
    """Send every record to stderr in `fmt` at `level` (replacing earlier handlers)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
