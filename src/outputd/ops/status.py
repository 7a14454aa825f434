"""`outputd status`: how the daemon's work stands, as one JSON object or as text."""

from __future__ import annotations

import os
import time
from typing import Any

from outputd import diskguard
from outputd.config import Config
from outputd.model import JobFilter, iso
from outputd.ops.access import Caller
from outputd.ops.view import job_object, late_filter
from outputd.store import Store

INTAKE_WAITING_S = 60  # tickets in the intake folder longer than this are listed


def build(config: Config, store: Store, intake_waiting: list[tuple[str, float]]
          ) -> dict[str, Any]:
    """The status report: counts, queue, hot folders, stuck files and tickets, space.
    `intake_waiting`: (name, arrival) of tickets in the intake folder for over
    INTAKE_WAITING_S (intake.accept.waiting_tickets)."""
    now = time.time()
    depth, oldest = store.jobs.queue()
    folders = store.hotfolders.states()
    return {
        "counts": store.jobs.counts(),
        "queue_depth": depth,
        "late": store.jobs.count(late_filter(JobFilter(), now)),
        "outbox_depth": store.outbox.depth(),
        "oldest_waiting": None if oldest is None else {
            "job_id": oldest.job_id, "status": oldest.status,
            "waiting_s": round(now - oldest.updated_at, 1),
            "why": job_object(store, oldest, full=False, paused={
                name for name, st in folders.items() if st["paused"]})["waiting"],
        },
        "hotfolders": {
            name: {
                "kind": cfg.kind,
                "paused": folders.get(name, {}).get("paused", False),
                "jobs_waiting": store.deliveries.waiting_for(name)
                if folders.get(name, {}).get("paused") else 0,
                "last_success_at": iso(folders.get(name, {}).get("last_success_at")),
                "last_error": folders.get(name, {}).get("last_error"),
                "last_error_at": iso(folders.get(name, {}).get("last_error_at")),
            }
            for name, cfg in config.hotfolders.items()
        },
        "stale_files": stale_files(config, store, now),
        "intake_waiting": [
            {"ticket": name, "waiting_s": round(now - arrived, 1)}
            for name, arrived in intake_waiting],
        "free_mb": diskguard.free_mb(config),
        "low_space": diskguard.low_space(config),
    }


def hotfolders(config: Config, store: Store, caller: Caller) -> list[dict[str, Any]]:
    """Each hot folder: paused or not, last success and error, files a RIP has not
    taken, and the jobs whose delivery to it failed (those `caller` may see)."""
    states_ = store.hotfolders.states()
    stale = stale_files(config, store, time.time())
    answer = []
    for name, cfg in config.hotfolders.items():
        st = states_.get(name, {})
        answer.append({
            "name": name, "kind": cfg.kind, "paused": bool(st.get("paused")),
            "last_success_at": iso(st.get("last_success_at")),
            "last_error": st.get("last_error"), "last_error_at": iso(st.get("last_error_at")),
            "stale_files": [f for f in stale if f["hotfolder"] == name
                            and caller.visible_id(store, f["job_id"])],
            "failed_jobs": [j for j in store.deliveries.failed_at(name)
                            if caller.visible_id(store, j)],
        })
    return answer


def stale_files(config: Config, store: Store, now: float) -> list[dict[str, Any]]:
    """Delivered files still in a local hot folder longer than its stale_after_s."""
    stale = []
    for name, cfg in config.hotfolders.items():
        if cfg.kind != "local":
            continue
        for job_id, path, since in store.deliveries.waiting_files(name, now - cfg.stale_after_s):
            if os.path.exists(path):
                stale.append({"hotfolder": name, "job_id": job_id, "path": path,
                              "waiting_s": round(now - since, 1)})
    return stale
