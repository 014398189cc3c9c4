"""Model size and checkpoint cost of a hashed-CSV run (issue 16, item 4).

Trains `ftrl train CSV --label click` (2^24-slot hashed table: the case where a model file
sized by the table would be 256 MB) with and without frequent checkpoints, and prints the
model directory's bytes, the wall seconds (median of --repeat runs, alternating the two
variants) and the summary's loop seconds.

    .venv/bin/python bench/model_size.py [--csv FILE] [--repeat 3]

The default CSV is ../shared/data/avazu_9k/train.csv when it is there, else the repo's
tests/data/ctr/avazu_train_head1000.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "avazu_9k" / "train.csv"
SMALL = ROOT / "tests" / "data" / "ctr" / "avazu_train_head1000.csv"


def dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.iterdir() if p.is_file())


def run(ftrl: str, csv: str, mdir: Path, extra: list) -> tuple:
    shutil.rmtree(mdir, ignore_errors=True)
    t0 = time.perf_counter()
    r = subprocess.run([ftrl, "train", csv, "--label", "click", "-m", str(mdir), "--json", "-q", *extra],
                       capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    s = json.loads(r.stdout)
    return wall, s.get("loop_seconds"), dir_bytes(mdir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(SHARED if SHARED.exists() else SMALL))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    ftrl = str(Path(sys.executable).with_name("ftrl"))
    rows = sum(1 for _ in open(a.csv, "rb")) - 1
    variants = {"final model only": [],
                "--checkpoint-every 2000 --keep-checkpoints 3": ["--checkpoint-every", "2000",
                                                                 "--keep-checkpoints", "3"]}
    results = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as wd:
        for _ in range(a.repeat):
            for name, extra in variants.items():
                results[name].append(run(ftrl, a.csv, Path(wd) / "m", extra))
    load = os.getloadavg()[0]
    print(f"{os.path.basename(a.csv)}: {rows:,} rows, `ftrl train --label click` (bits 24), "
          f"median of {a.repeat}, load {load:.1f}")
    print("| run | model dir bytes | wall s | loop s |")
    print("| --- | ---: | ---: | ---: |")
    for name, rs in results.items():
        wall = statistics.median(r[0] for r in rs)
        loop = statistics.median(r[1] for r in rs if r[1] is not None)
        print(f"| {name} | {rs[-1][2]:,} | {wall:.2f} | {loop:.2f} |")


if __name__ == "__main__":
    main()
