"""A reload swaps one Runtime: the new config, its transports, its policies, together."""

from __future__ import annotations

from pathlib import Path

from outputd.config import load_config
from outputd.daemon.worker import Runtime
from tests.helpers import write_config

TWO = ('[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\nfilename = "{job_id}.pdf"\n\n'
       '[hotfolders.rip2]\nkind = "local"\npath = "hot/rip2"\nfilename = "{job_id}.pdf"\n')


def test_a_reload_keeps_unchanged_transports_and_replaces_the_rest(tmp_path: Path):
    old = Runtime.build(load_config(write_config(tmp_path, hotfolders=TWO)))
    rip1, rip2 = old.transports.get("rip1"), old.transports.get("rip2")
    changed = TWO.replace('path = "hot/rip2"', 'path = "hot/elsewhere"') + (
        '\n[notify]\n[[notify.webhooks]]\nurl = "http://127.0.0.1:9/hook"\n')
    new = Runtime.build(load_config(write_config(tmp_path, hotfolders=changed)), old)
    assert new.transports.get("rip1") is rip1  # unchanged: its connection is kept
    moved = new.transports.get("rip2")
    assert moved is not rip2 and str(moved.folder).endswith("hot/elsewhere")
    # a job that began under the old runtime is handed the current transports
    assert old.transports.get("rip2") is moved
    # the outbox policy came with the same config
    assert old.owed.owed("Ordered") == []
    assert new.owed.owed("Ordered") == [("webhook", "http://127.0.0.1:9/hook")]
    assert new.config.hotfolders["rip2"].path.endswith("hot/elsewhere")
