"""Who holds a claim: this node's id, and whether an old claim's owner is gone."""

from __future__ import annotations

import os
import socket


def node_id(configured: str = "") -> str:
    """The configured node id, else `<hostname>:<pid>`."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


def is_gone(owner: str, me: str) -> bool:
    """Whether claims of `owner` are left over from a process that no longer runs.

    Called at start-up: a configured id equal to ours is our own previous life; a
    `<hostname>:<pid>` id of this host is gone when that process is.
    """
    if owner == me:
        return True
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
