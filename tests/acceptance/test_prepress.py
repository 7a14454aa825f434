"""Prepress through the real daemon, the CLI and the HTTP API (DESIGN §14): an operator
overrides a failed preflight with a reason, and a route holds its jobs for a proof that a
person verifies or rejects; each refused in the wrong status and for the wrong role."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pikepdf

from tests.conftest import DaemonProcess, Site, require_tool
from tests.helpers import job_ticket, make_pdf
from tests.pdfs import new_page, save
from tests.web import Web, submit, token

PROOF_ROUTES = ('[[routes]]\nmatch = {sku = "PROOF-*"}\nto = ["rip1"]\ncheckpoint = true\n\n'
                '[[routes]]\nmatch = {}\nto = ["rip1"]\n')


def _history(site: Site, job_id: str) -> list[tuple[str, str, str]]:
    return [(h["status"], h["by"], h["message"]) for h in site.show(job_id)["history"]]


def test_an_operator_overrides_a_failed_preflight_with_a_reason(tmp_path: Path):
    site = Site(tmp_path / "site")
    make_pdf(site.intake / "J-A4" / "a.pdf", width_mm=216, height_mm=303)  # A4 on an A5
    (site.root / "a4.json").write_text(json.dumps(job_ticket("J-A4", ["J-A4/a.pdf"])))
    site.cli("submit", str(site.root / "a4.json"))
    submit(site, "J-OK")
    daemon = DaemonProcess(site)
    try:
        site.wait_status("J-A4", "ValidationFailed", timeout=60)
        site.wait_status("J-OK", "InHotFolder", timeout=60)
        bare = site.cli("event", "J-A4", "override", check=False)
        assert bare.returncode == 1 and "needs a message saying why" in bare.stderr
        wrong = site.cli("event", "J-OK", "override", "--message", "why not", check=False)
        assert wrong.returncode == 1 and "only a job that failed preflight" in wrong.stderr
        web = Web(site)
        try:  # only operators override: not an approver, not the storefront
            for role in ("approver", "submitter", "viewer"):
                status, _ = web.json("POST", "/api/v1/jobs/J-A4/events", token(
                    site, f"a-{role}", role), {"event": "override", "message": "please"})
                assert status == 403, role
        finally:
            web.stop()
        assert site.show("J-A4")["status"] == "ValidationFailed"
        site.cli("event", "J-A4", "override", "--message",
                 "customer wants A4 scaled down by the RIP")
        job = site.wait_status("J-A4", "InHotFolder", timeout=60)
    finally:
        daemon.stop()
    entry = next(h for h in job["history"] if h["status"] == "ValidationFinished")
    assert entry["message"] == "customer wants A4 scaled down by the RIP"
    assert entry["by"] not in ("", "outputd")  # who: the user running the CLI
    failed = [c["check"] for c in job["preflight"]["checks"] if c["result"] == "failed"]
    assert "page_size" in failed  # the report keeps what was overridden


def test_a_route_holds_its_jobs_for_a_proof_verified_or_rejected(tmp_path: Path):
    site = Site(tmp_path / "site", routes=PROOF_ROUTES)
    for job_id in ("J-P1", "J-P2"):
        submit(site, job_id, product={"sku": "PROOF-A5"})
    submit(site, "J-PLAIN")
    web = Web(site)
    daemon = DaemonProcess(site)
    try:
        site.wait_status("J-PLAIN", "InHotFolder", timeout=60)
        for job_id in ("J-P1", "J-P2"):
            job = site.wait_status(job_id, "AwaitingProof", timeout=60)
            assert "verified (or rejected)" in job["history"][-1]["message"]
        assert sorted(p.name for p in site.hot.iterdir()) == ["5001_J-PLAIN_FLYER-A5_q250.pdf"]
        viewer, approver = token(site, "looker", "viewer"), token(site, "proofer", "approver")
        station = token(site, "table", "station")
        for caller in (viewer, station):
            assert web.json("POST", "/api/v1/jobs/J-P1/events", caller,
                            {"event": "verified"})[0] == 403
        assert web.json("POST", "/api/v1/jobs/J-PLAIN/events", approver,
                        {"event": "verified"})[0] == 409  # not waiting for a proof
        status, _ = web.json("POST", "/api/v1/jobs/J-P1/events", approver,
                             {"event": "verified", "message": "colours match the swatch"})
        assert status == 202
        site.wait_status("J-P1", "InHotFolder", timeout=60)
        site.cli("event", "J-P2", "rejected", "--message", "logo is blurred")
        site.wait_status("J-P2", "Rejected", timeout=60)
        refused = site.cli("event", "J-P2", "verified", check=False)
        assert refused.returncode == 1
    finally:
        daemon.stop()
        web.stop()
    walked = [s for s, _, _ in _history(site, "J-P1")]
    assert walked[walked.index("OutputCreated"):] == [
        "OutputCreated", "AwaitingProof", "Verified", "InHotFolder"]
    assert ("Verified", "proofer", "colours match the swatch") in _history(site, "J-P1")
    assert ("Rejected", os_user(), "logo is blurred") in _history(site, "J-P2")
    assert sorted(p.name for p in site.hot.iterdir()) == [
        "5001_J-P1_PROOF-A5_q250.pdf", "5001_J-PLAIN_FLYER-A5_q250.pdf"]


def os_user() -> str:
    import getpass

    return getpass.getuser()


def test_fix_ups_reach_the_hot_folder_and_a_clean_file_arrives_as_it_came(tmp_path: Path):
    site = Site(tmp_path / "site", extra='[preflight.profiles.turning]\nfix_rotate = true\n'
                'fix_boxes = true\n')
    turned = make_pdf(site.intake / "J-TURN" / "a.pdf", pages=2, width_mm=216,
                      height_mm=154).read_bytes()  # landscape art, portrait product, no boxes
    clean = make_pdf(site.intake / "J-CLEAN" / "a.pdf", trim_mm=(148, 210)).read_bytes()
    for job_id in ("J-TURN", "J-CLEAN"):
        (site.root / f"{job_id}.json").write_text(json.dumps(job_ticket(
            job_id, [f"{job_id}/a.pdf"], product={"preflight": {"profile": "turning"}})))
        site.cli("submit", str(site.root / f"{job_id}.json"))
    daemon = DaemonProcess(site)
    try:
        job = site.wait_status("J-TURN", "InHotFolder", timeout=60)
        site.wait_status("J-CLEAN", "InHotFolder", timeout=60)
    finally:
        daemon.stop()
    fixed = {c["check"]: c["pages"] for c in job["preflight"]["checks"]
             if c["result"] == "fixed"}
    assert fixed == {"boxes": [1, 2], "rotate": [1, 2]}
    shown = site.cli("show", "J-TURN").stdout
    assert "    fixed (2)\n" in shown and "rotate [pages 1-2]: " in shown
    with pikepdf.open(site.hot / "5001_J-TURN_FLYER-A5_q250.pdf") as sent:
        assert [int(p.obj.Rotate) for p in sent.pages] == [90, 90]
        assert all("/TrimBox" in p.obj for p in sent.pages)
    assert turned != (site.hot / "5001_J-TURN_FLYER-A5_q250.pdf").read_bytes()
    assert (site.hot / "5001_J-CLEAN_FLYER-A5_q250.pdf").read_bytes() == clean


def test_the_report_pdf_has_a_page_per_problem_with_the_place_marked(tmp_path: Path):
    require_tool("gs")
    site = Site(tmp_path / "site")
    pdf = pikepdf.new()
    pt = 72 / 25.4
    heavy = f"1 1 1 1 k {30 * pt:.2f} {150 * pt:.2f} {40 * pt:.2f} {20 * pt:.2f} re f"
    new_page(pdf, b"0 0 0 1 k 20 20 50 50 re f")
    new_page(pdf, heavy.encode())  # 400 % ink, 30-70 mm from the left, 46-66 mm from the top
    save(pdf, site.intake / "J-INK" / "a.pdf")
    (site.root / "ink.json").write_text(json.dumps(job_ticket(
        "J-INK", ["J-INK/a.pdf"], product={"preflight": {"profile": "sheetfed-offset"}})))
    site.cli("submit", str(site.root / "ink.json"))
    daemon = DaemonProcess(site)
    try:
        job = site.wait_status("J-INK", "ValidationFailed", timeout=60)
    finally:
        daemon.stop()
    tac = next(c for c in job["preflight"]["checks"] if c["check"] == "tac")
    assert tac["result"] == "failed" and tac["pages"] == [2] and len(tac["places"]) == 1
    target = tmp_path / "report.pdf"
    done = site.cli("show", "J-INK", "--report", str(target))
    assert "preflight report written" in done.stderr
    victim = tmp_path / "victim.txt"  # a link where the report is to go is replaced,
    victim.write_text("not yours")  # not followed
    linked = tmp_path / "linked.pdf"
    linked.symlink_to(victim)
    site.cli("show", "J-INK", "--report", str(linked))
    assert victim.read_text() == "not yours" and not linked.is_symlink()
    assert linked.read_bytes().startswith(b"%PDF-")
    problems = [c for c in job["preflight"]["checks"] if c["result"] != "passed"]
    with pikepdf.open(target) as report:
        assert len(report.pages) == 1 + len(problems)
        first = subprocess.run([require_tool("pdftotext"), "-l", "1", str(target), "-"],
                               capture_output=True, text=True, check=True).stdout
        assert "Preflight report: job J-INK" in first and "Failed (" in first
        page = next(n for n in range(2, len(report.pages) + 1) if "Failed: tac" in
                    subprocess.run([require_tool("pdftotext"), "-f", str(n), "-l", str(n),
                                    str(target), "-"], capture_output=True, text=True,
                                   check=True).stdout)
        ops = pikepdf.parse_content_stream(report.pages[page - 1])
    image = next(op for op in ops if str(op.operator) == "cm" and float(op.operands[0]) > 50)
    w, h, x, y = (float(image.operands[i]) for i in (0, 3, 4, 5))
    red = [i for i, op in enumerate(ops) if str(op.operator) == "RG"
           and float(op.operands[0]) > 0.5]
    mark = next(op for op in ops[red[0]:] if str(op.operator) == "re")
    mx, my, mw, mh = (float(v) for v in mark.operands)
    # the mark's centre, as a fraction of the thumbnail, is the heavy box's on the page
    centre = ((mx + mw / 2 - x) / w, (y + h - (my + mh / 2)) / h)
    expected = ((30 + 20) / 154, (216 - 160) / 216)
    assert abs(centre[0] - expected[0]) < 0.03 and abs(centre[1] - expected[1]) < 0.03
