"""PDF work against qpdf: merging (assembly) and checking (preflight).

(1) 50 files × 20 pages, an image on every page (about 2 MB a file), merged by outputd's
    assembly and by `qpdf --empty --pages … -- out.pdf`, alternating; wall time and
    peak RSS of each process (`/usr/bin/time`).
(2) preflight of one 500-page file against `qpdf --check` on it.
(3) preflight with the bundled profiles: `digital-cutsheet` on the 500-page file and on
    a 50-page file with a large image on every page, beside `qpdf --check`; and
    `sheetfed-offset` (which renders every page for total area coverage) on a 200-page
    file, beside Ghostscript's own `inkcov` device on the same file: seconds per page.

    python bench/pdf.py [--rounds 3] [--files 50] [--pages 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pikepdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pdfs import image, new_page  # noqa: E402

MERGE = """
import json, sys, time
from pathlib import Path
from outputd.pipeline.assemble import assemble
from outputd.tickets import JobTicket
ticket = JobTicket.model_validate(json.loads(sys.argv[1]))
files = [(Path(p), "part") for p in sys.argv[3:]]
started = time.perf_counter()
assemble(ticket, files, Path(sys.argv[2]))
print(time.perf_counter() - started)
"""
CHECK = """
import sys, time
from pathlib import Path
from outputd.pipeline import preflight
from outputd.tickets import Product
product = Product.model_validate({"type": "static", "sku": "A5", "name": "A5",
    "trim": {"width_mm": 148, "height_mm": 210}, "bleed_mm": 3, "pages": {"min": 1}})
profile = sys.argv[2] if len(sys.argv) > 2 else None
started = time.perf_counter()
report = preflight.run([(Path(sys.argv[1]), "big.pdf")], product, 1 << 40, None, profile)
print(time.perf_counter() - started)
assert not [c for c in report.failures() if c.check in ("opens", "limits")], report.summary()
"""


def make_part(path: Path, pages: int, side: int) -> None:
    pdf = pikepdf.new()
    for _ in range(pages):
        img = image(pdf, side, side)
        img.write(os.urandom(side * side * 4))  # incompressible, like a photo
        new_page(pdf, b"q 36 0 0 36 60 80 cm /Im1 Do Q",  # 160 px on half an inch
                 pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=img)))
    pdf.save(path)


def timed(cmd: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in KB, seconds the command reports for its own work) of
    a command, by /usr/bin/time; the last is the wall time for commands that print none."""
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], check=True,
                         capture_output=True, text=True)
    seconds, kb = out.stderr.strip().splitlines()[-1].split()
    own = out.stdout.strip().splitlines()
    return float(seconds), int(kb), float(own[-1]) if own else float(seconds)


def qcheck(path: Path) -> tuple[float, int, float]:
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M", "qpdf", "--check", str(path)],
                         capture_output=True, text=True)
    seconds, kb = out.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kb), float(seconds)


def by_profile(root: Path, big: Path, rounds: int) -> list[str]:
    """(3): the bundled profiles against qpdf --check and Ghostscript's inkcov."""
    photos = root / "photos.pdf"
    make_part(photos, 50, 600)  # 600 × 600 CMYK samples: about 1.4 MB a page
    two_hundred = root / "two-hundred.pdf"
    with pikepdf.open(big) as pdf:
        del pdf.pages[200:]
        pdf.save(two_hundred)
    lines = ["preflight with the bundled profiles (medians; in process / whole process / "
             "peak RSS)"]
    cases = [("digital-cutsheet", big, "500 pages"), ("digital-cutsheet", photos,
                                                     "50 pages with images"),
             ("sheetfed-offset", two_hundred, "200 pages, coverage rendered")]
    for profile, path, what in cases:
        ours = [timed([sys.executable, "-c", CHECK, str(path), profile])
                for _ in range(rounds)]
        with pikepdf.open(path) as pdf:
            pages = len(pdf.pages)
        if profile == "sheetfed-offset":
            name = "gs inkcov"
            theirs = [timed(["sh", "-c", f"gs -q -dSAFER -dBATCH -dNOPAUSE -r36 -sDEVICE=inkcov"
                                         f" -o /dev/null {path} >/dev/null"])
                      for _ in range(rounds)]
        else:
            name = "qpdf --check"
            theirs = [qcheck(path) for _ in range(rounds)]
        o = statistics.median(r[2] for r in ours)
        t = statistics.median(r[0] for r in theirs)
        lines.append(
            f"  {profile} on {what} ({path.stat().st_size >> 20} MB): outputd {o:.2f} s "
            f"({o / pages * 1000:.1f} ms a page) / "
            f"{statistics.median(r[0] for r in ours):.2f} s / "
            f"{statistics.median(r[1] for r in ours) / 1024:.0f} MB; {name} {t:.2f} s / "
            f"{statistics.median(r[1] for r in theirs) / 1024:.0f} MB; ratio {o / t:.2f} ×")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        side = 160  # 160 × 160 CMYK samples ≈ 100 KB a page, ≈ 2 MB a 20-page file
        parts = []
        for n in range(args.files):
            part = root / f"part{n:02d}.pdf"
            make_part(part, args.pages, side)
            parts.append(str(part))
        size = sum(Path(p).stat().st_size for p in parts) / args.files / (1 << 20)
        ticket = {"schema": "outputd.job/1", "job_id": "BENCH", "order_id": "1",
                  "storefront": "s", "customer": {}, "quantity": 1, "files": [
                      {"path": f"p{n}.pdf", "role": "part"} for n in range(args.files)],
                  "payment_status": "Paid", "product": {
                      "type": "multipart", "sku": "B", "name": "B",
                      "trim": {"width_mm": 148, "height_mm": 210}, "bleed_mm": 3,
                      "pages": {"min": 1}}}
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(timed([sys.executable, "-c", MERGE, json.dumps(ticket),
                               str(root / "out"), *parts]))
            theirs.append(timed(["qpdf", "--empty", "--pages", *parts, "--",
                                 str(root / "qpdf.pdf")]))
        big = root / "big.pdf"
        subprocess.run(["qpdf", "--empty", "--pages", *parts[:25], "--", str(big)], check=True)
        checks, qchecks = [], []
        for _ in range(args.rounds):
            checks.append(timed([sys.executable, "-c", CHECK, str(big)]))
            out = subprocess.run(["/usr/bin/time", "-f", "%e %M", "qpdf", "--check", str(big)],
                                 capture_output=True, text=True)
            seconds, kb = out.stderr.strip().splitlines()[-1].split()
            qchecks.append((float(seconds), int(kb), float(seconds)))
        idle = timed([sys.executable, "-c", "import outputd.pipeline.assemble, "
                      "outputd.pipeline.preflight"])
        profiles = by_profile(root, big, args.rounds)
        with pikepdf.open(big) as pdf:
            big_pages = len(pdf.pages)

    def med(values: list[tuple[float, int, float]], i: int) -> float:
        return statistics.median(v[i] for v in values)

    base_mb = idle[1] / 1024
    print(f"merge {args.files} files × {args.pages} pages ({size:.1f} MB a file), "
          f"{args.rounds} rounds, medians; an idle interpreter with outputd's PDF modules "
          f"imported: {idle[0]:.2f} s, {base_mb:.1f} MB")
    print("                    in process  whole process   peak RSS  RSS above idle")
    for name, rows in (("outputd assembly", ours), ("qpdf --pages", theirs)):
        extra = med(rows, 1) / 1024 - (base_mb if rows is ours else 0)
        print(f"  {name:<17} {med(rows, 2):8.2f} s  {med(rows, 0):10.2f} s  "
              f"{med(rows, 1) / 1024:7.1f} MB  {extra:7.1f} MB")
    print(f"  ratio (in process / qpdf)  {med(ours, 2) / med(theirs, 0):5.2f} ×   whole "
          f"process {med(ours, 0) / med(theirs, 0):5.2f} ×   peak RSS "
          f"{med(ours, 1) / med(theirs, 1):5.2f} ×")
    print(f"preflight of a {big_pages}-page file")
    for name, rows in (("outputd preflight", checks), ("qpdf --check", qchecks)):
        print(f"  {name:<17} {med(rows, 2):8.2f} s  {med(rows, 0):10.2f} s  "
              f"{med(rows, 1) / 1024:7.1f} MB")
    print(f"  ratio (in process / qpdf)  {med(checks, 2) / med(qchecks, 0):5.2f} ×   whole "
          f"process {med(checks, 0) / med(qchecks, 0):5.2f} ×")
    for line in profiles:
        print(line)


if __name__ == "__main__":
    main()
