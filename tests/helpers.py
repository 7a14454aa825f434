"""Test helpers: real PDFs made with pikepdf, tickets and configs in temp folders."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pikepdf

PT_PER_MM = 72 / 25.4


def make_pdf(path: Path, pages: int = 2, width_mm: float = 154, height_mm: float = 216,
             trim_mm: tuple[float, float] | None = None, bleed_mm: float = 3,
             padding: int = 0, label: str = "") -> Path:
    """A real PDF with `pages` pages of the given media size, text on each page, and a
    TrimBox when `trim_mm` is given; `padding` adds an uncompressed stream of that size."""
    pdf = pikepdf.new()
    w, h = width_mm * PT_PER_MM, height_mm * PT_PER_MM
    for number in range(1, pages + 1):
        # Vector art only (CMYK), no fonts: a file every check passes unless a test
        # changes it. The page number is drawn as that many bars.
        bars = " ".join(f"{20 + 12 * n} 20 8 40 re f" for n in range(number))
        art = f"% {label} page {number}\n0 0 0 1 k {bars}\n".encode()
        page = pdf.add_blank_page(page_size=(w, h))
        page.obj.Contents = pdf.make_stream(art)
        page.obj.Resources = pikepdf.Dictionary()
        if trim_mm is not None:
            tw, th = trim_mm[0] * PT_PER_MM, trim_mm[1] * PT_PER_MM
            x0, y0 = (w - tw) / 2, (h - th) / 2
            page.obj.TrimBox = pikepdf.Array([x0, y0, x0 + tw, y0 + th])
            page.obj.BleedBox = pikepdf.Array([0, 0, w, h])
    if padding:
        pdf.Root.Padding = pdf.make_stream(os.urandom(padding))
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(path)
    return path


def job_ticket(job_id: str, files: list[str], *, order_id: str = "5001",
               product_type: str = "static", **overrides: Any) -> dict[str, Any]:
    """A valid `outputd.job/1` ticket for an A5 product with 3 mm bleed."""
    ticket: dict[str, Any] = {
        "schema": "outputd.job/1",
        "job_id": job_id,
        "order_id": order_id,
        "storefront": "acme",
        "test_mode": False,
        "customer": {"username": "jdoe", "email": "jdoe@example.com"},
        "product": {
            "type": product_type,
            "sku": "FLYER-A5",
            "name": "A5 flyer",
            "trim": {"width_mm": 148, "height_mm": 210},
            "bleed_mm": 3,
            "pages": {"min": 1, "max": 4},
        },
        "quantity": 250,
        "attributes": {"stock": "130gsm silk"},
        "files": [{"path": f, "role": "part"} for f in files],
        "payment_status": "Paid",
        "approval": "NotRequired",
        "process_after": None,
        "priority": 0,
    }
    for key, value in overrides.items():
        if key == "product":
            ticket["product"].update(value)
        else:
            ticket[key] = value
    return ticket


def drop_ticket(intake: Path, ticket: dict[str, Any], name: str | None = None) -> Path:
    """Write a ticket the way a careful submitter does: temp name, then rename."""
    name = name or f"{ticket['job_id']}.json"
    temp = intake / f".{name}.tmp"
    temp.write_text(json.dumps(ticket))
    final = intake / name
    os.replace(temp, final)
    return final


def write_config(root: Path, *, workers: int | None = 2, extra: str = "",
                 routes: str | None = None, hotfolders: str | None = None, metrics: str = "",
                 limits: str = "", store_url: str | None = None) -> Path:
    """A config under `root` with one local hot folder `rip1` and a route for every job;
    `workers=None` leaves the daemon's default; `store_url` another store than SQLite."""
    root.mkdir(parents=True, exist_ok=True)
    hot = hotfolders if hotfolders is not None else (
        '[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\n'
        'filename = "{order_id}_{job_id}_{sku}_q{quantity}.pdf"\n'
    )
    route = routes if routes is not None else (
        "[[routes]]\nmatch = {test_mode = true}\nskip = true\n\n"
        '[[routes]]\nmatch = {}\nto = ["rip1"]\n'
    )
    text = (
        '[daemon]\nstate_dir = "state"\nintake_dir = "intake"\n'
        + (f"workers = {workers}\n" if workers is not None else "")
        + "stop_grace_s = 5\n\n[store]\nlease_s = 5\n"
        + (f'url = "{store_url}"\n' if store_url else "")
        + "\n[retry]\ninitial_s = 0.5\nmax_s = 2\n"
        + f"max_attempts = 4\n\n[metrics]\nlisten = \"{metrics}\"\n\n"
        f"[limits]\nmin_free_mb = 10\n{limits}\n\n{extra}\n{hot}\n{route}"
    )
    path = root / "outputd.toml"
    path.write_text(text)
    return path


def services(config_path: Path) -> Any:
    """The worker's services over a config, in process, with their own SQLite store
    (close `.store` after)."""
    import functools
    import threading

    from outputd.config import load_config
    from outputd.daemon.worker import Runtime, Services
    from outputd.intake.accept import take_late_file
    from outputd.layout import Layout
    from outputd.store import open_store

    config = load_config(config_path)
    layout = Layout(config)
    layout.create()
    return Services(Runtime.build(config), open_store(config.store.url), layout,
                    threading.Event(), threading.Event(),
                    late_file=functools.partial(take_late_file, layout))


def run_jobs(env: Any) -> None:
    """Work every job that can go on now, one after another, as one worker would."""
    from outputd.daemon.worker import Worker

    for _ in range(1000):  # a job claimed over and over is a stalled queue: fail, not hang
        job = env.store.claims.take("n", 30)
        if job is None:
            return
        Worker(env).work(job, "n")
    raise AssertionError("the workers claimed jobs 1000 times without the queue emptying")
