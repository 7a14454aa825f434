from __future__ import annotations

import json
import logging
import os
import sys

from outputd import logs


def record(name: str, level: int = logging.INFO, **fields) -> logging.LogRecord:
    rec = logging.LogRecord("outputd.x", level, __file__, 1, name, None, None)
    rec.fields = fields
    return rec


def test_text_lines_put_job_fields_first_and_quote_spaces():
    line = logs.TextFormatter(journald=False).format(
        record("job.status", message="two words", status="InHotFolder", job="J-1", order="5"))
    stamp, rest = line.split(" ", 1)
    assert stamp.endswith("Z") and "T" in stamp
    assert rest == 'INFO job.status job=J-1 order=5 status=InHotFolder message="two words"'


def test_under_journald_lines_carry_the_priority_and_no_timestamp():
    line = logs.TextFormatter(journald=True).format(
        record("delivery.failed", logging.ERROR, job="J-1"))
    assert line == "<3>ERROR delivery.failed job=J-1"


def test_json_lines_are_one_object():
    line = logs.JsonFormatter(journald=False).format(record("job.accepted", job="J-1", bytes=5))
    body = json.loads(line)
    assert body["event"] == "job.accepted" and body["job"] == "J-1" and body["bytes"] == 5


def test_journald_is_detected_from_journal_stream(monkeypatch, tmp_path):
    target = tmp_path / "stderr"
    with open(target, "w") as fh:
        monkeypatch.setattr(sys, "stderr", fh)
        st = os.fstat(fh.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert logs._under_journald()
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not logs._under_journald()


def test_control_characters_in_values_are_escaped_never_written_raw():
    record = logging.LogRecord("outputd", logging.INFO, "", 0, "event.recorded", None, None)
    record.fields = {"by": "\x1b[2K\rINFO job.status job=J-9 status=Shipped", "x": "a\x85b"}
    line = logs.TextFormatter(journald=False).format(record)
    assert "\x1b" not in line and "\r" not in line and "\x85" not in line
    assert 'by="\\u001b[2K\\rINFO job.status job=J-9 status=Shipped"' in line
    assert 'x="a\\x85b"' in line
