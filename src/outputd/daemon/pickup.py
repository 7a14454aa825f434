"""RIP pickup: a file taken out of a `watch_pickup` hot folder puts its job InProduction.

inotify reports a removal at once; a periodic look at the files still waiting catches
what it cannot see (a remote RIP emptying a share, removals while outputd was down).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from outputd import logs
from outputd.config import LocalHotFolder, SftpHotFolder
from outputd.store import Store

log = logging.getLogger(__name__)
RECONCILE_S = 10.0  # a removal inotify does not see (a share emptied by a remote RIP)


def watched_folders(hotfolders: dict[str, LocalHotFolder | SftpHotFolder]
                    ) -> dict[str, LocalHotFolder]:
    """The local hot folders whose pickup by the RIP is watched."""
    return {
        name: cfg for name, cfg in hotfolders.items()
        if isinstance(cfg, LocalHotFolder) and cfg.watch_pickup
    }


class PickupWatcher(FileSystemEventHandler):
    """Records a `picked_up` event when a delivered file is removed or moved away."""

    def __init__(self, store: Store, hotfolders: dict[str, LocalHotFolder | SftpHotFolder],
                 on_event: Callable[[], None]) -> None:
        self.store = store
        self.folders = watched_folders(hotfolders)
        self.on_event = on_event
        self._observer = Observer()

    def start(self) -> None:
        if not self.folders:
            return
        for name, cfg in self.folders.items():
            if cfg.mount is not None and not os.path.ismount(cfg.mount):
                logs.event(log, logging.WARNING, "pickup.unwatched", hotfolder=name,
                           reason=f"its share {cfg.mount} is not mounted",
                           then=f"files taken are found within {RECONCILE_S:g} s")
                continue  # no folder made on the local disk beneath the mount point
            Path(cfg.path).mkdir(parents=True, exist_ok=True)
            self._observer.schedule(self, cfg.path, recursive=False)
        self._observer.start()
        self.reconcile()

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)

    def reconcile(self) -> None:
        """Catch up on files taken unseen: while outputd was not running, or on a share,
        where inotify sees only this machine's own changes."""
        for name in self.folders:
            for job_id, path, _ in self.store.deliveries.waiting_files(name):
                if not os.path.exists(path):
                    self._taken(job_id, path)

    def on_deleted(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._gone(os.fsdecode(event.src_path))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._gone(os.fsdecode(event.src_path))

    def _gone(self, path: str) -> None:
        if os.path.exists(path):
            return  # delivered again since (a recreate took the old file back): not taken
        for job_id in self.store.deliveries.delivered_at(path):
            self._taken(job_id, path)

    def _taken(self, job_id: str, path: str) -> None:
        if any(e.event == "picked_up" for e in self.store.events.pending(job_id)):
            return
        self.store.events.add([job_id], "picked_up", "outputd", f"the RIP took {path}")
        logs.event(log, logging.INFO, "delivery.picked_up", job=job_id, path=path)
        self.on_event()
