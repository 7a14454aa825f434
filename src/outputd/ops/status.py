"""`outputd status`: how the daemon's work stands, as one JSON object or as text."""

from __future__ import annotations

import os
import time
from typing import Any

from outputd.config import Config
from outputd.daemon import diskguard
from outputd.intake.accept import waiting_tickets
from outputd.logs import counted
from outputd.model import iso
from outputd.ops.view import job_object
from outputd.store import SqlStore

INTAKE_WAITING_S = 60  # tickets in the intake folder longer than this are listed


def build(config: Config, store: SqlStore) -> dict[str, Any]:
    """The status report: counts, queue, hot folders, stuck files and tickets, space."""
    now = time.time()
    depth, oldest = store.queue()
    folders = store.hotfolder_states()
    return {
        "counts": store.status_counts(),
        "queue_depth": depth,
        "outbox_depth": store.outbox_depth(),
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
                "jobs_waiting": store.waiting_for(name)
                if folders.get(name, {}).get("paused") else 0,
                "last_success_at": iso(folders.get(name, {}).get("last_success_at")),
                "last_error": folders.get(name, {}).get("last_error"),
                "last_error_at": iso(folders.get(name, {}).get("last_error_at")),
            }
            for name, cfg in config.hotfolders.items()
        },
        "stale_files": stale_files(config, store, now),
        "intake_waiting": [
            {"ticket": name, "waiting_s": round(now - arrived, 1)} for name, arrived
            in waiting_tickets(config.daemon.intake_dir, now - INTAKE_WAITING_S)],
        "free_mb": diskguard.free_mb(config),
        "low_space": diskguard.low_space(config),
    }


def stale_files(config: Config, store: SqlStore, now: float) -> list[dict[str, Any]]:
    """Delivered files still in a local hot folder longer than its stale_after_s."""
    stale = []
    for name, cfg in config.hotfolders.items():
        if cfg.kind != "local":
            continue
        for job_id, path, since in store.waiting_files(name, now - cfg.stale_after_s):
            if os.path.exists(path):
                stale.append({"hotfolder": name, "job_id": job_id, "path": path,
                              "waiting_s": round(now - since, 1)})
    return stale


def render(body: dict[str, Any]) -> str:
    """The report as the text an operator reads."""
    lines = ["jobs by status"]
    lines += [f"  {status:<24} {count}" for status, count in sorted(body["counts"].items())]
    lines.append(f"queue depth  {body['queue_depth']}")
    lines.append(f"outbox       {body['outbox_depth']} notifications waiting")
    if body["oldest_waiting"]:
        o = body["oldest_waiting"]
        lines.append(f"oldest       {o['job_id']} ({o['status']}, {o['waiting_s']} s)"
                     + (f" waiting {o['why']}" if o.get("why") else ""))
    lines.append("hot folders")
    for name, h in body["hotfolders"].items():
        state = "paused" if h["paused"] else "active"
        line = f"  {name:<12} {h['kind']:<6} {state:<7} last success {h['last_success_at'] or '-'}"
        if h["last_error"]:
            line += f"  last error {h['last_error_at']}: {h['last_error']}"
        if h["paused"]:
            line += (f"  {counted(h['jobs_waiting'], 'job')} waiting for it "
                     f"(outputd resume {name})")
        lines.append(line)
    lines.append("free space")
    lines += [f"  {name:<20} {mb} MB" for name, mb in body["free_mb"].items()]
    if body["low_space"]:
        lines.append(f"LOW SPACE: {body['low_space']}")
    if body["stale_files"]:
        lines.append("files waiting in a hot folder longer than its stale_after_s")
        lines += [f"  {f['hotfolder']:<12} {f['job_id']:<16} {f['waiting_s']:>8.0f} s  "
                  f"{f['path']}" for f in body["stale_files"]]
    if body["intake_waiting"]:
        lines.append(f"tickets in the intake folder for over {INTAKE_WAITING_S} s (see the "
                     "log: intake.deferred, intake.failed)")
        lines += [f"  {t['ticket']:<28} {t['waiting_s']:>8.0f} s"
                  for t in body["intake_waiting"]]
    return "\n".join(lines)
