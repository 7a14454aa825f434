"""Reading the config file and its environment overrides, before any validation.

Kept apart from `outputd.config` (which validates with pydantic) so that the read-only
commands, `outputd show` and `outputd jobs`, can find the store without building the
models: that costs about 100 ms per command, more than the query itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from outputd.errors import ConfigError

DEFAULT_CONFIG = Path("config/outputd.toml")
DEFAULT_STATE_DIR = Path("../var/state")
ENV_PREFIX = "OUTPUTD_"
# The top-level keys of the config; an OUTPUTD_ variable whose first part is none of
# them is not a setting (the config models check this list is theirs).
SECTIONS = frozenset({"daemon", "store", "limits", "retry", "cleanup", "preflight",
                      "metrics", "web", "notify", "hotfolders", "routes"})
SQLITE_PREFIX = "sqlite:///"


class ConfigFile:
    """The config file's keys (`raw`), and the OUTPUTD_ overrides, not yet validated."""

    def __init__(self, path: Path, raw: dict[str, Any], overrides: dict[str, Any]) -> None:
        self.path = path
        self.raw = raw
        self.merged = _merge(raw, overrides)  # what the store lookup reads
        self.overridden = bool(overrides)  # some key comes from the environment
        self.base = path.resolve().parent  # what relative paths are relative to

    def at(self, path: Path) -> Path:
        """A path from the file, resolved against the file's folder."""
        return Path(os.path.normpath(self.base / path.expanduser()))

    def store_url(self, url: str, state_dir: Path) -> str:
        """The store URL with a relative SQLite path resolved; the default is
        outputd.db in the (resolved) state folder."""
        url = url or f"{SQLITE_PREFIX}{state_dir / 'outputd.db'}"
        if url.startswith(SQLITE_PREFIX):
            return f"{SQLITE_PREFIX}{self.at(Path(url[len(SQLITE_PREFIX):]))}"
        if url.startswith(("postgresql://", "postgres://")):
            return url
        raise ConfigError("store.url must start with sqlite:/// or postgresql://")

    def quick_store_url(self) -> str:
        """The store URL read straight from the keys, for commands that only read the
        store. Only `store.url` and `daemon.state_dir` are checked."""
        url = self._string("store", "url", "")
        state_dir = self.at(Path(self._string("daemon", "state_dir", str(DEFAULT_STATE_DIR))))
        return self.store_url(url, state_dir)

    def _string(self, section: str, key: str, default: str) -> str:
        table = self.merged.get(section, {})
        value = table.get(key, default) if isinstance(table, dict) else default
        if not isinstance(value, str):
            raise ConfigError(f"config file {self.path}: {section}.{key} must be a string")
        return value


def resolve_config_path(given: str | os.PathLike[str] | None) -> Path:
    """The config file to use: the flag, else $OUTPUTD_CONFIG, else config/outputd.toml."""
    if given:
        return Path(given)
    env = os.environ.get("OUTPUTD_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def read_config_file(path: str | os.PathLike[str] | None = None) -> ConfigFile:
    """Read the TOML file and merge the environment overrides; raise ConfigError."""
    config_path = resolve_config_path(path)
    try:
        with open(config_path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {config_path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {config_path} is not valid TOML: {exc}") from None
    return ConfigFile(config_path, raw, env_overrides(os.environ))


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`OUTPUTD_<SECTION>__<KEY>=value` as nested keys, for the commands that only look
    up the store (the daemon's config has pydantic-settings read them); values that are
    JSON lists or objects are parsed, the rest stay strings."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        path = name[len(ENV_PREFIX):].lower().split("__")
        if not name.startswith(ENV_PREFIX) or path[0] not in SECTIONS:
            continue
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another")
        parsed: Any = value
        if value[:1] in ("[", "{"):
            # A plain string may start like JSON too, e.g. a filename template.
            with contextlib.suppress(ValueError):
                parsed = json.loads(value)
        node[path[-1]] = parsed
    return tree


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
