"""What a barcode reader types, read as a job id."""

from __future__ import annotations

import pytest

from outputd.ops.scan import candidates


@pytest.mark.parametrize(("typed", "job_id"), [
    ("J-1001", "J-1001"),
    ("J-1001\r\n", "J-1001"),          # the reader's Enter
    ("]C0J-1001", "J-1001"),           # an AIM symbology identifier (Code 128)
    ("*J-1001*", "J-1001"),            # a prefix and a suffix set up on the reader
    ("\x02J_77/a\x03", "J_77/a"),      # STX/ETX framing
])
def test_a_scanned_code_yields_the_job_id(typed: str, job_id: str):
    assert job_id in candidates(typed)


def test_the_code_as_typed_is_tried_first_and_nothing_empty():
    assert candidates("-J-1-")[0] == "-J-1-"
    assert candidates("\r\n") == []
