"""Log lines for people, for a local server (LOG_FORMAT=text, what `make run` sets).

Powertools' JSON lines stay the format inside Lambda (and the default elsewhere). This
formatter gets the same fields from Powertools and writes one short line instead:

    12:00:01.234 INFO  GET /users/1 200 3.1ms id=4f0c...
    12:00:02.001 WARNING database unavailable request_id=9a1e... error=OperationalError
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord

# Fields every line carries in JSON that a person at a terminal does not need.
_QUIET = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "sampling_rate",
        "xray_trace_id",
        "taskName",
    }
)
_EXCEPTION = ("exception", "exception_name", "exception_notes", "stack_trace")
_REQUEST = ("method", "path", "status", "duration_ms", "request_id")


class TextFormatter(LambdaPowertoolsFormatter):
    """Powertools' formatter (keys, exceptions, context) with a one-line rendering."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S.%F")

    def serialize(self, log: LogRecord) -> str:
        fields: dict[str, Any] = dict(log)  # the standard keys and the `extra` ones
        head = f"{fields.get('timestamp', '')} {fields.get('level', ''):<5}"
        if fields.get("message") == "request" and all(key in log for key in _REQUEST):
            line = (
                f"{head} {fields['method']} {fields['path']} {fields['status']} "
                f"{fields['duration_ms']:.1f}ms id={fields['request_id']}"
            )
        else:
            extra = " ".join(
                f"{key}={value}"
                for key, value in fields.items()
                if key not in _QUIET and key not in _EXCEPTION
            )
            line = f"{head} {fields.get('message', '')}" + (f" {extra}" if extra else "")
        if fields.get("exception"):
            line += f"\n{fields['exception']}"
        return line
