"""Store contract tests, run against every engine (SQLite today)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from outputd import states
from outputd.errors import TransitionRefused, UnknownJob
from outputd.model import KEEP, Delivery, JobFilter, Output, Result
from outputd.store import DuplicateJob, Store, open_store
from outputd.store.accounts import NameTaken, Token, User
from outputd.tickets import JobTicket
from tests.conftest import IN_CI
from tests.helpers import job_ticket


def add(store: Store, job_id: str, priority: int = 0, **changes) -> JobTicket:
    body = job_ticket(job_id, [f"{job_id}/a.pdf"], priority=priority, **changes)
    ticket = JobTicket.model_validate(body)
    sha = hashlib.sha256(json.dumps(body).encode()).hexdigest()
    store.jobs.add(ticket, sha, states.ORDERED, "accepted", "test", time.time())
    return ticket


class StoreContract:
    """What every store engine must do."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        raise NotImplementedError

    def test_migrate_twice_is_harmless(self, store: Store):
        store.migrate()
        add(store, "J-1")
        store.migrate()
        assert store.jobs.get("J-1").status == states.ORDERED

    def test_add_records_the_first_history_entry_and_refuses_duplicates(self, store):
        add(store, "J-1")
        assert [(h.status, h.by) for h in store.jobs.history("J-1")] == [(states.ORDERED, "test")]
        ticket = JobTicket.model_validate(job_ticket("J-1", ["J-1/a.pdf"]))
        with pytest.raises(DuplicateJob) as caught:
            store.jobs.add(ticket, "other-sha", states.ORDERED, "again", "test", None)
        assert not caught.value.identical
        with pytest.raises(UnknownJob, match="there is no job J-404"):
            store.jobs.get("J-404")

    def test_transition_appends_history_and_a_refused_one_changes_nothing(self, store):
        add(store, "J-1")
        job = store.jobs.transition("J-1", states.VALIDATION_FINISHED, "ok", "outputd",
                               due_at=None, preflight={"ok": True, "checks": []})
        assert job.status == states.VALIDATION_FINISHED and job.preflight == {
            "ok": True, "checks": []}
        with pytest.raises(TransitionRefused):
            store.jobs.transition("J-1", states.IN_HOT_FOLDER, "skip ahead", "outputd")
        assert store.jobs.get("J-1").status == states.VALIDATION_FINISHED
        assert [h.status for h in store.jobs.history("J-1")] == [states.ORDERED,
                                                            states.VALIDATION_FINISHED]

    def test_claims_go_by_priority_then_arrival_and_hold_a_lease(self, store):
        add(store, "J-low")
        add(store, "J-high", priority=5)
        add(store, "J-next")
        first = store.claims.take("node-a", lease_s=30)
        second = store.claims.take("node-b", lease_s=30)
        assert (first.job_id, second.job_id) == ("J-high", "J-low")
        assert store.claims.take("node-b", 30).job_id == "J-next"
        assert store.claims.take("node-b", 30) is None  # all claimed
        store.claims.release("J-low", "node-a")  # not the owner: nothing happens
        assert store.claims.take("node-c", 30) is None
        store.claims.release("J-low", "node-b")
        assert store.claims.take("node-c", 30).job_id == "J-low"

    def test_an_expired_lease_is_taken_over(self, store):
        add(store, "J-1")
        assert store.claims.take("dead-node", lease_s=0.05).job_id == "J-1"
        time.sleep(0.1)
        assert store.claims.take("live-node", lease_s=30).job_id == "J-1"

    def test_renewal_keeps_a_lease_alive(self, store):
        add(store, "J-1")
        store.claims.take("node-a", lease_s=0.2)
        time.sleep(0.1)
        store.claims.renew("node-a", lease_s=30)
        time.sleep(0.15)
        assert store.claims.take("node-b", 30) is None

    def test_a_pending_event_makes_a_resting_job_claimable(self, store):
        add(store, "J-1")
        store.jobs.transition("J-1", states.VALIDATION_FAILED, "bad", "outputd", due_at=None)
        assert store.claims.take("node-a", 30) is None
        store.events.add(["J-1"], "shipped", "alice", "")
        job = store.claims.take("node-a", 30)
        assert job.job_id == "J-1"
        assert [e.event for e in store.events.pending("J-1")] == ["shipped"]

    def test_concurrent_claims_never_hand_out_a_job_twice(self, store):
        for n in range(40):
            add(store, f"J-{n}")
        claimed: list[str] = []
        lock = threading.Lock()

        def grab(owner: str) -> None:
            while (job := store.claims.take(owner, 30)) is not None:
                with lock:
                    claimed.append(job.job_id)

        threads = [threading.Thread(target=grab, args=(f"n{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(claimed) == sorted(f"J-{n}" for n in range(40))

    def test_release_owner_frees_every_claim_of_a_stopped_node(self, store):
        add(store, "J-1")
        add(store, "J-2")
        store.claims.take("old", 30)
        store.claims.take("old", 30)
        assert store.claims.owners() == ["old"]
        assert store.claims.release_owner("old") == 2
        assert store.claims.owners() == []

    def test_deliveries_round_trip_and_mark_hot_folder_health(self, store):
        add(store, "J-1")
        d = Delivery("rip1", "J-1.pdf", "/hot/J-1.pdf", "pending")
        store.jobs.save(store.jobs.get("J-1"), Result(deliveries=[d]))
        assert store.deliveries.of("J-1") == [d]
        assert "rip1" not in store.hotfolders.states()  # planned, not tried
        failed = Delivery("rip1", "J-1.pdf", "/hot/J-1.pdf", "failed", 1, "disk full", 123.0)
        store.jobs.save(store.jobs.get("J-1"), Result(deliveries=[failed], tried=[failed]))
        assert store.deliveries.of("J-1")[0].error == "disk full"
        assert store.hotfolders.states()["rip1"]["last_error"] == "disk full"

    def test_jobs_a_hot_folder_failed_are_found(self, store):
        for job_id, hotfolder, copy_failed in (("J-2", "rip1", True), ("J-1", "rip1", True),
                                               ("J-3", "rip2", True), ("J-4", "rip1", False)):
            add(store, job_id)
            store.jobs.save(store.jobs.get(job_id), Result(deliveries=[
                Delivery(hotfolder, f"{job_id}.pdf", f"/hot/{job_id}.pdf", "failed", 1, "x")]))
            if copy_failed:
                for status in (states.VALIDATION_FINISHED, states.OUTPUT_CREATION_STARTED,
                               states.OUTPUT_CREATED, states.COPY_FAILED):
                    store.jobs.transition(job_id, status, "", "outputd")
        assert store.deliveries.failed_at("rip1") == ["J-1", "J-2"]
        assert store.deliveries.failed_at("rip3") == []
        assert (store.deliveries.waiting_for("rip1"), store.deliveries.waiting_for("rip2"),
                store.deliveries.waiting_for("rip3")) == (2, 1, 0)  # J-4 is not delivering yet

    def test_filters_combine(self, store):
        add(store, "J-1", order_id="1", customer={"username": "Ann", "email": "ann@a.example"})
        add(store, "J-2", order_id="2", storefront="beta")
        store.jobs.transition("J-2", states.VALIDATION_FAILED, "bad", "outputd")
        assert [j.job_id for j in store.jobs.matching(JobFilter(search="ann"))] == ["J-1"]
        assert [j.job_id for j in store.jobs.matching(JobFilter(search="100%"))] == []
        assert [j.job_id for j in store.jobs.matching(
            JobFilter(storefront="beta", history_status=states.VALIDATION_FAILED))] == ["J-2"]
        assert store.jobs.count(JobFilter()) == 2

    def test_a_late_job_is_noted_once_and_one_in_a_hot_folder_never(self, store):
        add(store, "J-1", due_at="2020-01-01T00:00:00Z")
        add(store, "J-2", due_at="2020-01-01T00:00:00Z")
        add(store, "J-3", due_at="2999-01-01T00:00:00Z")
        for status in (states.VALIDATION_FINISHED, states.OUTPUT_CREATION_STARTED,
                       states.OUTPUT_CREATED, states.IN_HOT_FOLDER):
            store.jobs.transition("J-2", status, "", "outputd")
        assert store.jobs.note_late(time.time()) == ["J-1"]
        assert store.jobs.note_late(time.time()) == []
        history = [h.status for h in store.jobs.history("J-1")]
        assert history.count(states.LATE) == 1 and store.jobs.get("J-1").status == "Ordered"
        assert states.LATE not in [h.status for h in store.jobs.history("J-2")]

    def test_late_jobs_are_found_by_the_tickets_due_time(self, store):
        add(store, "J-1", due_at="2020-01-01T12:00:00+02:00")
        add(store, "J-2", due_at="2999-01-01T00:00:00Z")
        add(store, "J-3")
        noon = datetime.fromisoformat("2020-01-01T10:00:00+00:00").timestamp()
        found = store.jobs.matching(JobFilter(due_before=noon + 1))
        assert [j.job_id for j in found] == ["J-1"]
        assert store.jobs.matching(JobFilter(due_before=noon)) == []  # the zone counts


    def test_save_commits_a_stage_result_whole_or_not_at_all(self, store):
        add(store, "J-1")
        pending = Delivery("rip1", "J-1.pdf", "/hot/J-1.pdf", "pending")
        store.events.add(["J-1"], "paid", "shop", "")
        event = store.events.pending("J-1")[0]
        job = store.jobs.save(store.jobs.get("J-1"), Result(
            states.VALIDATION_FINISHED, "checked", due_at=123.0, deliveries=[pending],
            fields={"payment_status": "Paid"}, event_id=event.id))
        assert (job.status, job.due_at, job.payment_status) == (
            states.VALIDATION_FINISHED, 123.0, "Paid")
        assert store.jobs.get("J-1") == job
        assert store.deliveries.of("J-1") == [pending]
        assert store.events.pending("J-1") == []
        # a refused status change leaves everything of the result unwritten
        with pytest.raises(TransitionRefused):
            store.jobs.save(job, Result(states.CLEAN_UP, "x", deliveries=[]))
        assert store.deliveries.of("J-1") == [pending]
        # a new status without a time to look again rests the job; a note keeps its time
        job = store.jobs.save(job, Result(states.OUTPUT_CREATION_STARTED, "making"))
        assert store.jobs.get("J-1").due_at is None
        store.jobs.save(job, Result(states.MIS_RETRIGGER, "n", note=True, due_at=KEEP))
        assert store.jobs.get("J-1").status == states.OUTPUT_CREATION_STARTED

    def test_a_status_change_owes_what_the_policy_says_with_its_body(self, store):
        class Policy:
            def owed(self, status):
                return [("webhook", "http://mis.example/hook")] if status == "Ordered" else []

            def body(self, change):
                return json.dumps({"job": change.job_id, "status": change.status,
                                   "storefront": change.storefront})

        body = job_ticket("J-1", ["J-1/a.pdf"])
        store.jobs.add(JobTicket.model_validate(body), "sha", states.ORDERED, "accepted",
                       "test", None, Policy())
        sent = store.outbox.next_webhook("node-a", 30)
        assert json.loads(sent.body) == {"job": "J-1", "status": "Ordered",
                                         "storefront": body["storefront"]}
        store.jobs.transition("J-1", states.VALIDATION_FINISHED, "ok", "outputd",
                              owed=Policy())
        assert store.outbox.depth() == 1  # that status owes nothing

    def test_histories_outputs_and_deliveries_of_many_jobs_in_one_read_each(self, store):
        add(store, "J-1")
        add(store, "J-2")
        add(store, "J-3")
        d = Delivery("rip1", "J-2.pdf", "/hot/J-2.pdf", "pending")
        o = Output("J-2.pdf", "/work/J-2.pdf", 10, "ab", 2)
        store.jobs.save(store.jobs.get("J-2"), Result(
            states.VALIDATION_FINISHED, "ok", outputs=[o], deliveries=[d]))
        histories = store.jobs.histories(["J-1", "J-2", "J-404"])
        assert sorted(histories) == ["J-1", "J-2"]
        assert [h.status for h in histories["J-2"]] == [states.ORDERED,
                                                        states.VALIDATION_FINISHED]
        assert store.deliveries.of_jobs(["J-1", "J-2"]) == {"J-2": [d]}
        assert store.deliveries.outputs_of(["J-2", "J-3"]) == {"J-2": [o]}
        assert store.jobs.histories([]) == {} and store.deliveries.of("J-1") == []

    def test_limited_searches_and_paused_hot_folders(self, store):
        add(store, "J-1", storefront="alpha")
        add(store, "J-2", storefront="beta")
        add(store, "J-3", storefront="gamma")
        found = store.jobs.matching(JobFilter(storefronts=frozenset({"alpha", "gamma"})))
        assert sorted(j.job_id for j in found) == ["J-1", "J-3"]
        assert store.jobs.count(JobFilter(storefronts=frozenset({"beta"}))) == 1
        assert store.hotfolders.paused() == set()
        store.hotfolders.set_paused("rip1", True)
        store.hotfolders.set_paused("rip2", False)
        assert store.hotfolders.paused() == {"rip1"}

    def test_users_and_tokens_round_trip_and_share_one_namespace(self, store):
        alice = User("alice", "operator", ("acme",), "scrypt$h1", 10.0, 10.0)
        store.accounts.add_user(alice)
        assert store.accounts.user("alice") == alice and store.accounts.user("bob") is None
        mis = Token("mis", "submitter", ("acme", "beta"), "00ff00ff00ff00ff", "scrypt$h2", 11.0)
        store.accounts.add_token(mis)
        assert store.accounts.token("00ff00ff00ff00ff") == mis
        with pytest.raises(NameTaken, match="already a user named alice"):
            store.accounts.add_token(replace(mis, name="alice", token_id="1" * 16))
        with pytest.raises(NameTaken, match="already a token named mis"):
            store.accounts.add_user(replace(alice, name="mis"))
        assert store.accounts.set_password("alice", "scrypt$h3", 20.0)
        assert store.accounts.user("alice").password_changed_at == 20.0
        assert not store.accounts.set_password("bob", "x", 20.0)
        assert store.accounts.revoke_token("mis", 30.0)
        assert not store.accounts.revoke_token("mis", 31.0)  # once only
        assert store.accounts.tokens()[0].revoked_at == 30.0
        assert store.accounts.remove_user("alice") and not store.accounts.remove_user("alice")
        assert store.accounts.users() == []

    def test_a_reader_never_sees_another_threads_unfinished_transaction(self, store):
        inside, seen = threading.Event(), []

        def write_then_fail() -> None:
            with pytest.raises(RuntimeError), store.engine.transaction() as cur:
                cur.execute("UPDATE jobs SET status = 'Bogus' WHERE job_id = 'J-1'")
                inside.set()
                time.sleep(0.3)  # the reader runs now
                raise RuntimeError("rolled back")

        add(store, "J-1")
        writer = threading.Thread(target=write_then_fail)
        writer.start()
        assert inside.wait(5)
        seen.append(store.jobs.get("J-1").status)
        writer.join()
        assert seen == [states.ORDERED]


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        store = open_store(f"sqlite:///{tmp_path / 'state' / 'outputd.db'}")
        yield store
        store.close()

    def test_an_older_store_learns_its_jobs_due_times(self, tmp_path: Path):
        """The migration that adds order_due_at fills it from the stored tickets."""
        import sqlite3

        from outputd.store.schema import MIGRATIONS, _order_due

        path = tmp_path / "old.db"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        before = next(i for i, steps in enumerate(MIGRATIONS) if _order_due in steps)
        for version, steps in enumerate(MIGRATIONS[:before], start=1):
            for step in steps:
                assert isinstance(step, str)
                db.execute(step.replace("{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
        for job_id, due in (("J-1", "2026-01-01T00:00:00Z"), ("J-2", None)):
            ticket = json.dumps(job_ticket(job_id, ["a.pdf"], due_at=due))
            db.execute("INSERT INTO jobs (job_id, order_id, storefront, test_mode,"
                       " product_type, sku, quantity, username, email, status,"
                       " payment_status, approval, ticket, ticket_sha256, created_at,"
                       " updated_at) VALUES (?, '1', 'acme', 0, 'static', 'S', 1, 'u', 'e',"
                       " 'Ordered', 'Paid', 'NotRequired', ?, '', 0, 0)", (job_id, ticket))
        db.commit()
        db.close()
        store = open_store(f"sqlite:///{path}")
        try:
            with store.engine.reader() as cur:
                dues = dict(cur.execute("SELECT job_id, order_due_at FROM jobs").fetchall())
        finally:
            store.close()
        assert dues == {"J-1": datetime.fromisoformat("2026-01-01T00:00:00+00:00")
                        .timestamp(), "J-2": None}

    def test_the_database_is_in_wal_mode(self, store):
        with store.engine.reader() as cur:
            assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_url: str) -> Store:
        store = open_store(pg_url)
        yield store
        store.close()

    def test_migrations_from_several_nodes_at_once_apply_once(self, pg_url: str):
        errors: list[BaseException] = []

        def start() -> None:
            try:
                open_store(pg_url).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        store = open_store(pg_url)
        with store.engine.reader() as cur:
            versions = [r[0] for r in cur.execute(
                "SELECT version FROM schema_version ORDER BY version").fetchall()]
        assert versions == list(range(1, len(versions) + 1))
        store.close()

    def test_listen_wakes_on_new_work(self, store: Store):
        woken = threading.Event()
        stopping = threading.Event()
        listener = threading.Thread(target=store.listen, args=(woken.set, stopping))
        listener.start()
        time.sleep(0.5)
        add(store, "J-1")
        assert woken.wait(2)
        stopping.set()
        listener.join(5)

    def test_an_unreachable_server_is_a_clear_error(self):
        from outputd.errors import ConfigError
        with pytest.raises(ConfigError, match="cannot open the store"):
            open_store("postgresql://nobody@127.0.0.1:1/none")


def test_a_store_root_creates_belongs_to_the_state_folders_owner(tmp_path: Path):
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI runs as root; this checks what root leaves behind")
        pytest.skip("needs root")
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)  # the daemon's user (here: nobody)
    store = open_store(f"sqlite:///{state / 'outputd.db'}")
    add(store, "J-1")
    store.close()
    owners = {p.name: (p.stat().st_uid, p.stat().st_gid) for p in state.iterdir()}
    assert owners["outputd.db"] == (65534, 65534)
    assert set(owners.values()) == {(65534, 65534)}
