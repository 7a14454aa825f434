"""Job sheets against qpdf, side by side in one run.

A 200-page file with an image on every page (about 80 MB) gets its sheet:
(1) `prepended`: outputd's whole step (page-1 thumbnail by pdftoppm, the sheet drawn
    by reportlab, put before page 1 and saved by pikepdf) beside `qpdf --empty --pages
    sheet.pdf big.pdf -- out.pdf`, which only joins a ready sheet to the file;
(2) `sheet` (separate, A4): the thumbnail and the sheet, beside `qpdf --check` of the
    sheet (a floor: starting a process that reads a small PDF).
Wall time and peak RSS of each process (`/usr/bin/time`), medians of the rounds.

    python bench/jobsheet.py [--rounds 5] [--pages 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pdf import make_part, timed  # noqa: E402

MAKE = """
import sys, time
from outputd.pipeline import jobsheet
facts = jobsheet.SheetFacts("J-1001", "5001", "acme", "jdoe <jdoe@example.com>",
    "A5 flyer", "FLYER-A5", 250, 200, "2030-01-02 15:00 UTC", {"stock": "130gsm silk"})
started = time.perf_counter()
jobsheet.make(sys.argv[1], facts, sys.argv[2], sys.argv[3])
print(time.perf_counter() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        big = root / "big.pdf"
        make_part(big, args.pages, 640)  # 640 × 640 CMYK samples: about 1.6 MB a page
        mb = big.stat().st_size / (1 << 20)
        rows: dict[str, list[tuple[float, int, float]]] = {}
        sheet = root / "sheet.pdf"
        for _ in range(args.rounds):
            for name, cmd in (
                    ("outputd prepend", [sys.executable, "-c", MAKE, "prepended", str(big),
                                         str(root / "pre.pdf")]),
                    ("qpdf --pages", ["qpdf", "--empty", "--pages", str(sheet), str(big),
                                      "--", str(root / "q.pdf")]),
                    ("outputd sheet", [sys.executable, "-c", MAKE, "sheet", str(big),
                                       str(sheet)]),
                    ("qpdf --check", ["sh", "-c", f"qpdf --check {sheet} >/dev/null"])):
                if name == "qpdf --pages" and not sheet.exists():
                    timed([sys.executable, "-c", MAKE, "sheet", str(big), str(sheet)])
                rows.setdefault(name, []).append(timed(cmd))
        idle = timed([sys.executable, "-c", "import outputd.pipeline.jobsheet"])

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[name])

    print(f"a {args.pages}-page file of {mb:.0f} MB, {args.rounds} rounds, medians; an idle "
          f"interpreter with the sheet's modules imported: {idle[0]:.2f} s, "
          f"{idle[1] / 1024:.0f} MB")
    print("                     in process  whole process   peak RSS")
    for name in rows:
        print(f"  {name:<17} {med(name, 2):9.3f} s  {med(name, 0):10.2f} s  "
              f"{med(name, 1) / 1024:7.1f} MB")
    ours, theirs = "outputd prepend", "qpdf --pages"
    print(f"  prepend / qpdf --pages: in process {med(ours, 2) / med(theirs, 0):.2f} ×, "
          f"whole process {med(ours, 0) / med(theirs, 0):.2f} ×, "
          f"peak RSS {med(ours, 1) / med(theirs, 1):.2f} ×")


if __name__ == "__main__":
    main()
