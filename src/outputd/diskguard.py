"""Stop claiming new work when the state folder or a local hot folder runs out of space."""

from __future__ import annotations

import shutil
from pathlib import Path

from outputd.config import Config, LocalHotFolder


def watched_paths(config: Config) -> dict[str, Path]:
    """The folders whose free space the daemon watches, by name."""
    paths = {"state_dir": config.daemon.state_dir}
    for name, folder in config.hotfolders.items():
        if isinstance(folder, LocalHotFolder):
            paths[f"hotfolders.{name}"] = Path(folder.path)
    return paths


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_mb(config: Config, with_sources: bool = True) -> dict[str, int]:
    """Free megabytes on each folder's file system (the nearest existing parent), and on
    sources_dir's: it fills with intake, not with work, so it is reported, not guarded."""
    paths = watched_paths(config)
    if with_sources and config.daemon.sources_dir is not None:
        paths["sources_dir"] = config.daemon.sources_dir
    return {name: shutil.disk_usage(_existing(path)).free // (1 << 20)
            for name, path in paths.items()}


def low_space(config: Config) -> str | None:
    """Why new work must wait, or None when every folder has `min_free_mb` free."""
    limit = config.limits.min_free_mb
    low = [f"{name} has {mb} MB free"
           for name, mb in free_mb(config, with_sources=False).items() if mb < limit]
    if not low:
        return None
    return "; ".join(low) + f" (limits.min_free_mb = {limit}): not claiming new work"
