"""Start-up time of the ``taxopost`` command, against importing numpy and Django alone.

Every command pays the start-up, ``--help`` included, so a command imports only what it uses
(scipy.stats, matplotlib, pyarrow, httpx and Django's setup load in the commands that need
them). Prints medians, in the same run and on the same interpreter, of:

- the baseline: ``python -c "import numpy, django"``;
- ``taxopost --help`` and the ``--help`` of a few real commands (each a fresh process);

and the ratio of each to the baseline (target: ``taxopost --help`` within 2x).

    .venv/bin/python benchmarks/startup.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import REPO

BASELINE = ("baseline: import numpy, django", [sys.executable, "-c", "import numpy, django"])
COMMANDS = (
    ("taxopost --help", ["--help"]),
    ("taxopost run --help", ["run", "--help"]),
    ("taxopost rollup --help", ["rollup", "--help"]),
    ("taxopost evaluate --help", ["evaluate", "--help"]),
    ("taxopost jobs list --help", ["jobs", "list", "--help"]),
    ("taxopost export occurrences --help", ["export", "occurrences", "--help"]),
)
TARGET = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    # Bytecode cached as an installed package has it (pip compiles on install): without this, a
    # PYTHONDONTWRITEBYTECODE environment would compile every taxopost module on every start.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO / "src")
    # the console script is `python -c "from taxopost.cli import run; run()"` in effect: no PATH lookup
    entry = [sys.executable, "-c", "import sys; from taxopost.cli import run; sys.argv[0] = 'taxopost'; run()"]

    runs = [BASELINE[1], *([*entry, *argv] for _, argv in COMMANDS)]
    names = [BASELINE[0], *(name for name, _ in COMMANDS)]
    times: list[list[float]] = [[] for _ in runs]
    for repeat in range(args.repeats + 1):  # round-robin, so that the machine's load falls on all alike
        for argv, found in zip(runs, times, strict=True):
            start = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if repeat:  # the first round warms the file cache and writes the bytecode
                found.append(time.perf_counter() - start)
    medians = [statistics.median(found) for found in times]
    baseline = medians[0]
    print(f"{names[0]:<40} {baseline * 1000:8.0f} ms")
    ratios = {}
    for name, seconds in zip(names[1:], medians[1:], strict=True):
        ratios[name] = seconds / baseline
        print(f"{name:<40} {seconds * 1000:8.0f} ms  {ratios[name]:5.2f}x baseline")
    verdict = "met" if ratios["taxopost --help"] <= TARGET else "NOT met"
    print(f"target: taxopost --help within {TARGET:g}x of the baseline: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
