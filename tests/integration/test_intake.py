"""Intake against real folders and a real SQLite store."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest

from outputd import states
from outputd.config import load_config
from outputd.errors import IntakeDeferred, RequestRefused
from outputd.fileutil import sha256_file
from outputd.intake import files as intakefiles
from outputd.intake.accept import Intake, claim_name, lock_intake, waiting_tickets
from outputd.layout import Layout
from outputd.store import open_store
from tests.helpers import job_ticket, make_pdf, write_config


@pytest.fixture
def setup(tmp_path: Path):
    config = load_config(write_config(tmp_path))
    layout = Layout(config)
    layout.create()
    store = open_store(config.store.url)
    yield Intake(store, layout, "node-a"), layout, store
    store.close()


def write(intake: Path, body: dict, name: str | None = None) -> Path:
    path = intake / (name or f"{body['job_id']}.json")
    path.write_text(json.dumps(body))
    return path


def test_accept_moves_ticket_and_files_and_empties_the_intake(setup):
    intake, layout, store = setup
    make_pdf(layout.intake / "orders" / "J-1" / "a.pdf")
    outcome = intake.handle(write(layout.intake, job_ticket("J-1", ["orders/J-1/a.pdf"])))
    assert outcome.result == "accepted"
    assert layout.source_file("J-1", "orders/J-1/a.pdf").exists()
    assert layout.ticket_file("J-1").exists()
    assert sorted(os.listdir(layout.intake)) == ["rejected"]
    assert store.jobs.get("J-1").status == states.ORDERED


def test_a_missing_file_is_accepted_and_waits(setup):
    intake, layout, store = setup
    outcome = intake.handle(write(layout.intake, job_ticket("J-1", ["J-1/late.pdf"])))
    assert outcome.result == "accepted"
    assert "waiting for J-1/late.pdf" in store.jobs.history("J-1")[0].message


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "symlinked-folder"])
def test_unsafe_named_files_reject_the_ticket(setup, tmp_path: Path, kind: str):
    intake, layout, store = setup
    outside = make_pdf(tmp_path / "outside.pdf")
    target = layout.intake / "J-1" / "a.pdf"
    target.parent.mkdir(parents=True)
    if kind == "symlink":
        target.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        target.parent.rmdir()
        target.parent.symlink_to(tmp_path)
    outcome = intake.handle(write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"])))
    assert outcome.result == "rejected"
    error = json.loads((layout.rejected / "J-1.json.error.json").read_text())
    assert error["ticket"] == "J-1.json"
    assert "J-1/a.pdf" in error["error"]
    assert store.jobs.find("J-1") is None
    assert outside.exists()


def test_rejections_keep_earlier_ones(setup):
    intake, layout, _ = setup
    for _ in range(2):
        (layout.intake / "bad.json").write_text("{")
        assert intake.handle(layout.intake / "bad.json").result == "rejected"
    assert sorted(os.listdir(layout.rejected)) == [
        "bad.json", "bad.json.1", "bad.json.1.error.json", "bad.json.error.json"]


def test_a_ticket_another_node_claimed_is_let_go(setup):
    intake, layout, store = setup
    path = write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"]))
    os.rename(path, layout.intake / claim_name(path.name, "node-b"))
    assert intake.handle(path).result == "gone"
    assert store.jobs.find("J-1") is None


def test_claims_of_a_stopped_node_are_put_back(setup):
    intake, layout, _ = setup
    path = write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"]))
    os.rename(path, layout.intake / claim_name(path.name, "host:1"))
    intake.recover_claims(lambda owner: owner == "host:1", stale_after_s=3600)
    assert path.exists()


def test_a_claim_held_too_long_by_another_node_is_taken_back(setup):
    intake, layout, _ = setup
    path = write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"]))
    claimed = layout.intake / claim_name(path.name, "node-far-away")
    os.rename(path, claimed)
    intake.recover_claims(lambda owner: False, stale_after_s=3600)
    assert claimed.exists()  # another node may still be at it
    intake.recover_claims(lambda owner: False, stale_after_s=0)
    assert path.exists()


def test_an_event_ticket_for_an_unknown_job_is_rejected(setup):
    intake, layout, _ = setup
    event = {"schema": "outputd.event/1", "job_id": "J-404", "event": "shipped"}
    outcome = intake.handle(write(layout.intake, event, "ev.json"))
    assert outcome.result == "rejected"
    assert "there is no job J-404" in outcome.reason


def test_an_intake_is_held_alone_by_an_own_store_and_shared_by_a_shared_one(tmp_path: Path):
    folder = tmp_path / "intake"
    first = lock_intake(folder, shared=True)
    second = lock_intake(folder, shared=True)  # nodes of one PostgreSQL store
    with pytest.raises(RequestRefused, match="in use by another outputd"):
        lock_intake(folder, shared=False)
    os.close(first)
    os.close(second)
    alone = lock_intake(folder, shared=False)
    for shared in (True, False):
        with pytest.raises(RequestRefused):
            lock_intake(folder, shared=shared)
    os.close(alone)
    assert os.listdir(folder) == []  # the folder itself is locked: no file to confuse


def test_a_node_with_its_own_store_handles_tickets_where_they_lie(setup):
    intake, layout, store = setup
    assert not intake.claims
    make_pdf(layout.intake / "J-1" / "a.pdf")
    path = write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"]))
    assert intake.handle(path).result == "accepted"
    assert intake.handle(path).result == "gone"  # a second event for the same ticket
    assert store.jobs.get("J-1").status == states.ORDERED


def test_a_ticket_whose_files_cannot_be_kept_waits_in_the_intake(setup, monkeypatch):
    intake, layout, store = setup
    intake.claims = True  # as on a shared intake: the claim must be given back
    make_pdf(layout.intake / "J-1" / "a.pdf")
    ticket = write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"]))

    def full(named, target: Path) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(intakefiles, "keep", full)
    with pytest.raises(IntakeDeferred, match=r"job J-1: .*no space left on the device"):
        intake.handle(ticket)
    assert sorted(os.listdir(layout.intake)) == ["J-1", "J-1.json", "rejected"]
    assert store.jobs.find("J-1") is None
    monkeypatch.undo()
    assert intake.handle(ticket).result == "accepted"
    assert layout.source_file("J-1", "J-1/a.pdf").exists()


def test_tickets_left_in_the_intake_are_listed_oldest_first(tmp_path: Path):
    first = write(tmp_path, job_ticket("J-1", []))
    time.sleep(0.05)
    write(tmp_path, job_ticket("J-2", []))
    (tmp_path / ".J-3.json.tmp").write_text("{}")  # still being written: not a ticket
    (tmp_path / "J-4").mkdir()
    now = time.time()
    assert waiting_tickets(tmp_path, now - 60) == []
    listed = waiting_tickets(tmp_path, now + 60)
    assert [name for name, _ in listed] == ["J-1.json", "J-2.json"]
    assert listed[0][1] == pytest.approx(first.stat().st_ctime)


def test_a_file_swapped_for_a_symlink_while_tickets_are_handled_is_never_taken(
        setup, tmp_path: Path):
    """A submitter swaps each named file for a symlink to another customer's file in a
    loop while the intake handles the tickets: whatever is kept is the submitter's own
    file, never the other customer's, which stays where it is."""
    intake, layout, store = setup
    secret = make_pdf(tmp_path / "other-customer" / "art.pdf", label="someone else")
    secret_sha = sha256_file(secret)
    names = [f"J-{n:03d}" for n in range(80)]
    own = {}
    for job_id in names:
        own[job_id] = sha256_file(make_pdf(layout.intake / job_id / "a.pdf", label=job_id))
        (layout.intake / job_id / "link").symlink_to(secret)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for job_id in names:
                folder = layout.intake / job_id
                with contextlib.suppress(OSError):
                    os.rename(folder / "a.pdf", folder / "real")
                    os.rename(folder / "link", folder / "a.pdf")
                    os.rename(folder / "a.pdf", folder / "link")
                    os.rename(folder / "real", folder / "a.pdf")

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        results = [intake.handle(write(layout.intake, job_ticket(job_id, [f"{job_id}/a.pdf"])))
                   for job_id in names]
    finally:
        stop.set()
        swapper.join()
    kept = 0
    for job_id, outcome in zip(names, results, strict=True):
        source = layout.source_file(job_id, f"{job_id}/a.pdf")
        if outcome.result == "accepted" and source.exists():
            assert not source.is_symlink()
            assert sha256_file(source) == own[job_id]
            kept += 1
        else:
            assert not source.exists()
    assert kept > 0
    assert sha256_file(secret) == secret_sha


@pytest.mark.parametrize("whose", ["another user's", "group-writable", "outputd's own"])
def test_a_kept_file_is_outputds_own_copy_when_another_user_could_write_it(setup, whose):
    """Copied when anyone but outputd's user could write it; moved (the same file) when
    only outputd's user can, whoever holds a link to it."""
    intake, layout, _ = setup
    art = make_pdf(layout.intake / "J-1" / "a.pdf")
    art.chmod(0o644)
    if whose == "another user's":
        os.chown(art, 65534, 65534)  # the tests run as root
    elif whose == "group-writable":
        art.chmod(0o664)
    held = layout.intake.parent / "held.pdf"
    os.link(art, held)  # the submitter keeps a name for it
    assert intake.handle(write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"]))).result == \
        "accepted"
    kept = layout.source_file("J-1", "J-1/a.pdf")
    moved = whose == "outputd's own"
    assert os.path.samefile(kept, held) == moved
    assert layout.source_sha256("J-1") == ({} if moved else {"J-1/a.pdf": sha256_file(held)})


def test_a_ticket_name_too_long_for_its_error_file_is_set_aside_with_a_shorter_one(setup):
    intake, layout, _ = setup
    name = "x" * 245 + ".json"
    (layout.intake / name).write_text("{")
    outcome = intake.handle(layout.intake / name)
    assert outcome.result == "rejected"
    errors = [p for p in layout.rejected.iterdir() if p.name.endswith(".error.json")]
    assert len(errors) == 1 and len(errors[0].name.encode()) <= 255
    body = json.loads(errors[0].read_text())
    assert body["ticket"] == name
    assert (layout.rejected / errors[0].name.removesuffix(".error.json")).read_text() == "{"
    assert os.listdir(layout.intake) == ["rejected"]


def test_a_fixed_and_dropped_again_ticket_clears_its_stale_error_file(setup):
    intake, layout, _ = setup
    make_pdf(layout.intake / "J-1" / "a.pdf")
    bad = job_ticket("J-1", ["J-1/a.pdf"], quantity=0)
    assert intake.handle(write(layout.intake, bad)).result == "rejected"
    assert (layout.rejected / "J-1.json.error.json").exists()
    (layout.rejected / "J-1.json").unlink()  # the operator takes it out, fixes it,
    os.rename(layout.rejected / "J-1", layout.intake / "J-1")
    fixed = job_ticket("J-1", ["J-1/a.pdf"])  # and drops it again
    assert intake.handle(write(layout.intake, fixed)).result == "accepted"
    assert os.listdir(layout.rejected) == []


def test_a_file_outputd_may_not_remove_from_the_intake_is_kept_and_the_job_goes_on(
        setup, monkeypatch, caplog):
    """A submitter's folder that outputd may not write (the tests run as root, so the
    refusal is made here): outputd has its copy, says so once, and accepts the job."""
    intake, layout, _ = setup
    art = make_pdf(layout.intake / "J-1" / "a.pdf")
    os.chown(art, 65534, 65534)
    real_unlink = os.unlink

    def refusing(path, *, dir_fd=None):
        if path == "a.pdf":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", refusing)
    with caplog.at_level("WARNING"):
        outcome = intake.handle(write(layout.intake, job_ticket("J-1", ["J-1/a.pdf"])))
    assert outcome.result == "accepted"
    assert layout.source_file("J-1", "J-1/a.pdf").read_bytes() == art.read_bytes()
    assert [r.getMessage() for r in caplog.records] == ["intake.left_behind"]
