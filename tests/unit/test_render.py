"""What the CLI prints for a person."""

from __future__ import annotations

from outputd.cli.render import _checks


def test_show_groups_preflight_checks_by_result_with_their_pages():
    lines = _checks([
        {"check": "colour", "ok": False, "severity": "warning", "message": "RGB",
         "pages": [1, 2, 3, 7]},
        {"check": "fonts", "ok": True, "result": "passed", "message": "embedded", "pages": []},
        {"check": "bleed", "ok": False, "result": "failed", "message": "no bleed",
         "pages": [2]},
    ])
    assert lines == ["    failed (1)", "      bleed [page 2]: no bleed",
                     "    warned (1)", "      colour [pages 1-3, 7]: RGB",
                     "    passed (1)", "      fonts: embedded"]
