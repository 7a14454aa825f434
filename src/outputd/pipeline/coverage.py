"""Total area coverage (DESIGN §14): the most ink any place of a page carries, measured on
a CMYK rendering by Ghostscript (`pamcmyk32`) at the profile's resolution, in the PDF
process and under its limits. A pixel at 36 dpi is a 0.7 mm square, the size of area the
Ghent Workgroup's specification averages coverage over; spot colours count as their
CMYK alternates."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MM_PER_INCH = 25.4


class NotMeasured(Exception):
    """Ghostscript could not render the file (or is not installed); the message says."""


@dataclass(frozen=True)
class PageCoverage:
    """The highest coverage on a page, in per cent, and where the area above the limit
    lies (millimetres from the page's top left corner as shown), if any."""

    page: int
    highest: float
    over: tuple[float, float, float, float] | None = None  # left, top, right, bottom


def measure(path: Path, limit_pct: float, dpi: int, timeout_s: float) -> list[PageCoverage]:
    """Each page's highest coverage, rendered at `dpi`."""
    with tempfile.TemporaryDirectory(prefix="outputd-tac-") as folder:
        command = ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOINTERPOLATE",
                   "-sDEVICE=pamcmyk32", f"-r{dpi}",
                   f"-sOutputFile={os.path.join(folder, 'p%06d.pam')}", "--", str(path)]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout_s)
        except FileNotFoundError:
            raise NotMeasured("Ghostscript (gs) is not installed") from None
        except subprocess.TimeoutExpired:
            raise NotMeasured(f"rendering took longer than {timeout_s:.0f} s") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            raise NotMeasured("Ghostscript could not render it"
                              + (f" ({said[-1][:200]})" if said else ""))
        return [_page(int(name[1:7]), Path(folder, name).read_bytes(), limit_pct, dpi)
                for name in sorted(os.listdir(folder))]


def _page(number: int, pam: bytes, limit_pct: float, dpi: int) -> PageCoverage:
    end = pam.index(b"ENDHDR\n") + len(b"ENDHDR\n")
    header = dict(line.split(None, 1) for line in pam[:end].decode().splitlines()[1:]
                  if line and not line.startswith("#") and " " in line)
    width = int(header["WIDTH"])
    data = memoryview(pam)[end:]
    sums = [c + m + y + k for c, m, y, k in zip(data[0::4], data[1::4], data[2::4],
                                                 data[3::4], strict=True)]
    highest = max(sums, default=0)
    limit = limit_pct * 255 / 100
    if highest <= limit:
        return PageCoverage(number, highest * 100 / 255)
    over = [i for i, s in enumerate(sums) if s > limit]
    xs = [i % width for i in over]
    ys = [i // width for i in over]
    to_mm = MM_PER_INCH / dpi
    return PageCoverage(number, highest * 100 / 255,
                        (min(xs) * to_mm, min(ys) * to_mm, (max(xs) + 1) * to_mm,
                         (max(ys) + 1) * to_mm))
