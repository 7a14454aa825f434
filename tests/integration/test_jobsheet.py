"""The job sheet read back as a person and a barcode reader would: rendered at 300 dpi
with pdftoppm and decoded with zbar, its text read with pdftotext, and checked by
outputd's own preflight."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pikepdf
import pytest

from outputd import states
from outputd.daemon.worker import Services
from outputd.intake.accept import Intake
from outputd.pipeline import deliver, jobsheet, preflight
from outputd.tickets import Product
from tests import helpers
from tests.conftest import require_tool
from tests.helpers import job_ticket, make_pdf, write_config

FACTS = jobsheet.SheetFacts(
    job_id="J-1001", order_id="5001", storefront="acme", customer="jdoe <jdoe@example.com>",
    product="A5 flyer", sku="FLYER-A5", quantity=250, pages=2,
    due="2026-12-01 15:00 UTC", attributes={"stock": "130gsm silk"})


def thumbnail(tmp_path: Path) -> bytes:
    pdf = make_pdf(tmp_path / "art.pdf")
    subprocess.run([require_tool("pdftoppm"), "-png", "-singlefile", "-scale-to-x", "300",
                    "-scale-to-y", "-1", str(pdf), str(tmp_path / "thumb")], check=True)
    return (tmp_path / "thumb.png").read_bytes()


def scanned(pdf: Path) -> str:
    """What a barcode reader reads off the sheet printed at 300 dpi."""
    subprocess.run([require_tool("pdftoppm"), "-png", "-r", "300", "-singlefile", str(pdf),
                    str(pdf.with_suffix(""))], check=True)
    done = subprocess.run([require_tool("zbarimg"), "--raw", "-q", "-Sdisable",
                           "-Scode128.enable", str(pdf.with_suffix(".png"))],
                          capture_output=True, text=True)
    return done.stdout.strip()


@pytest.mark.parametrize(("size", "name"), [(jobsheet.A4, "a4"),
                                            ((148 * 2.8346, 210 * 2.8346), "a5")])
def test_the_sheet_reads_as_its_job_for_a_person_and_a_reader(tmp_path: Path, size, name):
    path = tmp_path / f"sheet-{name}.pdf"
    path.write_bytes(jobsheet.sheet(FACTS, size, thumbnail(tmp_path)))
    assert scanned(path) == "J-1001"
    text = subprocess.run([require_tool("pdftotext"), str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    for value in ("J-1001", "5001", "acme", "jdoe@example.com", "A5 flyer", "FLYER-A5",
                  "250", "2026-12-01 15:00 UTC", "130gsm silk"):
        assert value in text, value


def test_our_own_preflight_passes_the_sheet(tmp_path: Path):
    path = tmp_path / "sheet.pdf"
    path.write_bytes(jobsheet.sheet(FACTS, jobsheet.A4, thumbnail(tmp_path)))
    a4 = Product.model_validate({
        "type": "static", "sku": "SHEET", "name": "job sheet", "bleed_mm": 0,
        "trim": {"width_mm": 210, "height_mm": 297}, "pages": {"min": 1, "max": 1}})
    report = preflight.run([(path, path.name)], a4, 10 << 20)
    assert report.ok, [c.message for c in report.failures()]
    assert [c.ok for c in report.checks if c.check == "fonts"] == [True]


def test_a_small_page_takes_a_separate_sheet():
    assert jobsheet.fits(*jobsheet.A4)
    assert not jobsheet.fits(85 * 2.8346, 55 * 2.8346)  # a business card


def test_a_sheet_is_the_same_bytes_each_time_it_is_made(tmp_path: Path):
    """A file renamed into a hot folder before a stop is recognised when it is made
    again after the start (no second copy, no replaced file)."""
    source = make_pdf(tmp_path / "out.pdf", trim_mm=(148, 210))
    made = [jobsheet.make(kind, FACTS, str(source), str(tmp_path / f"{kind}-{n}.pdf"))
            for kind in ("prepended", "sheet") for n in (1, 2)]
    assert made[0].sha256 == made[1].sha256 and made[2].sha256 == made[3].sha256
    assert [m.pages for m in made] == [3, 3, 1, 1]


SHEET_FOLDERS = (
    '[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\nfilename = "{job_id}.pdf"\n'
    'job_sheet = "prepend"\n\n'
    '[hotfolders.rip2]\nkind = "local"\npath = "hot/rip2"\nfilename = "{job_id}.pdf"\n'
    'job_sheet = "separate"\n')


@pytest.fixture
def env(tmp_path: Path):
    services = helpers.services(write_config(
        tmp_path, hotfolders=SHEET_FOLDERS,
        routes='[[routes]]\nmatch = {}\nto = ["rip1", "rip2"]\n'))
    yield services
    services.store.close()


def _accept(env: Services, job_id: str) -> None:
    make_pdf(env.layout.intake / job_id / "a.pdf")
    ticket = env.layout.intake / f"{job_id}.json"
    ticket.write_text(json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"])))
    assert Intake(env.store, env.layout, "n").handle(ticket).result == "accepted"


_run = helpers.run_jobs


def test_a_sheet_renamed_into_place_before_a_stop_is_not_sent_twice(env: Services):
    _accept(env, "J-1")
    for name in ("rip1", "rip2"):
        env.store.hotfolders.set_paused(name, True)
    _run(env)  # planned, nothing sent
    output = env.store.deliveries.outputs("J-1")[0]
    ticket = env.store.jobs.get("J-1").ticket
    hot1, hot2 = (Path(env.config.hotfolders[n].path) for n in ("rip1", "rip2"))
    hot1.mkdir(parents=True)
    hot2.mkdir(parents=True)
    facts = jobsheet.facts_of(ticket, output.pages)
    # the previous life made both and renamed them into place, then died
    jobsheet.make("prepended", facts, output.path, str(hot1 / "J-1.pdf"))
    jobsheet.make("sheet", facts, output.path, str(hot2 / "J-1_sheet.pdf"))
    before = {p: p.stat().st_ino for p in (hot1 / "J-1.pdf", hot2 / "J-1_sheet.pdf")}
    for name in ("rip1", "rip2"):
        env.store.hotfolders.set_paused(name, False)
        env.store.hotfolders.wake(name)
    _run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER, \
        env.store.deliveries.of("J-1")
    assert sorted(os.listdir(hot1)) == ["J-1.pdf"]
    assert sorted(os.listdir(hot2)) == ["J-1.pdf", "J-1_sheet.pdf"]
    assert {p: p.stat().st_ino for p in before} == before  # recognised, not replaced


def test_a_cancelled_job_takes_back_its_sheets_but_not_a_file_that_replaced_them(
        env: Services):
    _accept(env, "J-1")
    _run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    hot1, hot2 = (Path(env.config.hotfolders[n].path) for n in ("rip1", "rip2"))
    (hot2 / "J-1_sheet.pdf").unlink()  # the RIP took the sheet, and someone put
    (hot2 / "J-1_sheet.pdf").write_bytes(b"%PDF-1.4 another file")  # another in its place
    env.store.events.add(["J-1"], "cancelled", "shop", "")
    _run(env)
    assert env.store.jobs.get("J-1").status == states.CLEAN_UP
    assert os.listdir(hot1) == []
    assert os.listdir(hot2) == ["J-1_sheet.pdf"]
    message = env.store.jobs.history("J-1")[-1].message
    assert "withdrawn from rip1:" in message and "rip2:" in message
    assert "already taken by the RIP from rip2:" in message


@pytest.mark.parametrize("plant", ["symlink", "hardlink", "fifo"])
def test_something_planted_where_a_sheet_is_kept_is_not_sent(env: Services, tmp_path: Path,
                                                            plant: str):
    """The working folder's kept sheets are used only if they are files of ours alone:
    a link or FIFO in their place is replaced by a sheet made again, never sent or
    followed."""
    _accept(env, "J-1")
    for name in ("rip1", "rip2"):
        env.store.hotfolders.set_paused(name, True)
    _run(env)  # planned, nothing sent
    output = env.store.deliveries.outputs("J-1")[0]
    ticket = env.store.jobs.get("J-1").ticket
    victim = tmp_path / "victim.pdf"
    victim.write_bytes(b"%PDF-1.4 somebody else's file")
    kept = [deliver._sheet_file(d, output, ticket) for d in env.store.deliveries.of("J-1")]
    for found in filter(None, kept):
        path = found[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        if plant == "symlink":
            path.symlink_to(victim)
        elif plant == "hardlink":
            os.link(victim, path)
        else:
            os.mkfifo(path)
    assert len([k for k in kept if k]) == 2  # the prepended output and the A4 sheet
    for name in ("rip1", "rip2"):
        env.store.hotfolders.set_paused(name, False)
        env.store.hotfolders.wake(name)
    _run(env)
    assert env.store.jobs.get("J-1").status == states.IN_HOT_FOLDER
    hot1, hot2 = (Path(env.config.hotfolders[n].path) for n in ("rip1", "rip2"))
    for sent, pages in ((hot1 / "J-1.pdf", output.pages + 1), (hot2 / "J-1_sheet.pdf", 1)):
        with pikepdf.open(sent) as pdf:  # the sheets as made, not the planted file
            assert len(pdf.pages) == pages
    assert victim.read_bytes() == b"%PDF-1.4 somebody else's file"
