"""One line per event on stderr: `LEVEL event key=value …`, or one JSON object.

Under journald (JOURNAL_STREAM names our stderr) the timestamp is left to the journal
and each line starts with the syslog priority `<N>`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

_PRIORITY = {
    logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
    logging.DEBUG: 7,
}
_FIELD_ORDER = ("job", "order", "status", "hotfolder", "bytes", "ms")


def event(logger: logging.Logger, level: int, name: str, **fields: Any) -> None:
    """Log one event with its fields; None values are left out."""
    logger.log(level, name, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def _under_journald() -> bool:
    stream = os.environ.get("JOURNAL_STREAM", "")
    if ":" not in stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NEEDS_QUOTES = re.compile('[ "=\x00-\x1f\x7f-\x9f\u2028\u2029]')


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 page`, `2 pages`: a number with its noun in the right form."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def printable(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\n`): a
    value from a ticket or a request cannot move the cursor or start a line of its own
    in a terminal or the journal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or _NEEDS_QUOTES.search(text):
        return printable(json.dumps(text, ensure_ascii=False))
    return text


class TextFormatter(logging.Formatter):
    """One line per event: `LEVEL event key=value ...`."""
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "fields", {}))
        ordered = [k for k in _FIELD_ORDER if k in fields] + sorted(
            k for k in fields if k not in _FIELD_ORDER
        )
        parts = [record.levelname, record.getMessage()]
        parts += [f"{key}={_quote(fields[key])}" for key in ordered]
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        line = " ".join(parts)
        if self.journald:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{line}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z {line}"


class JsonFormatter(logging.Formatter):
    """One JSON object per event, for log shippers."""
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {"level": record.levelname, "event": record.getMessage()}
        if not self.journald:
            body["at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + (
                f".{int(record.msecs):03d}Z"
            )
        body.update(getattr(record, "fields", {}))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        line = json.dumps(body, ensure_ascii=False, default=str)
        return f"<{_PRIORITY.get(record.levelno, 6)}>{line}" if self.journald else line


def setup(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send outputd's log lines to stderr in the configured format."""
    # A line names its event and fields, not the source line, thread or process: spare
    # every record the stack walk and the lookups (the logging manual's optimisations).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    journald = _under_journald()
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handler.setFormatter(formatter(journald))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("watchdog", "apscheduler", "paramiko"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
