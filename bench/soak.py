"""The full soak: 10,000 small jobs through one daemon (CI runs 1,000).

    python bench/soak.py [--jobs 10000]

Runs tests/acceptance/test_soak.py with SOAK_JOBS set and prints its figures: resident
memory, open file descriptors and threads after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "tests/acceptance/test_soak.py"],
        cwd=root, env={**os.environ, "SOAK_JOBS": str(args.jobs)},
        capture_output=True, text=True,
    )
    print("\n".join(line for line in done.stdout.splitlines()
                    if line.startswith("soak:") or "passed" in line or "failed" in line))
    raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
