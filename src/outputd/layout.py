"""Where a job's files live: sources (kept for reopen) and its working folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from outputd.config import Config


class Layout:
    """Folder names for one node: `sources_dir/<job>/` and `state_dir/work/<job>/`."""

    def __init__(self, config: Config) -> None:
        assert config.daemon.sources_dir is not None
        self.intake = config.daemon.intake_dir
        self.rejected = self.intake / "rejected"
        self.sources_root = config.daemon.sources_dir
        self.work_root = config.daemon.state_dir / "work"

    def create(self) -> None:
        for folder in (self.intake, self.rejected, self.sources_root, self.work_root):
            folder.mkdir(parents=True, exist_ok=True)

    def sources(self, job_id: str) -> Path:
        return self.sources_root / job_id

    def source_file(self, job_id: str, relative: str) -> Path:
        return self.sources(job_id) / "files" / relative

    def ticket_file(self, job_id: str) -> Path:
        return self.sources(job_id) / "ticket.json"

    def work(self, job_id: str) -> Path:
        return self.work_root / job_id

    def outputs(self, job_id: str) -> Path:
        return self.work(job_id) / "out"

    def fixed(self, job_id: str) -> Path:
        """Where preflight's fix-ups put the copies they mend."""
        return self.work(job_id) / "fixed"

    def source_sha256(self, job_id: str) -> dict[str, str]:
        """The sha256 of each file kept at intake (`files.sha256`), by its ticket path."""
        try:
            text = (self.sources(job_id) / "files.sha256").read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        return {path: sha for sha, _, path in (line.partition("  ")
                                               for line in text.splitlines())}

    def sources_kept(self, job_id: str) -> bool:
        return self.ticket_file(job_id).is_file()

    def clear_work(self, job_id: str) -> None:
        shutil.rmtree(self.work(job_id), ignore_errors=True)

    def remove_sources(self, job_id: str) -> None:
        shutil.rmtree(self.sources(job_id), ignore_errors=True)
