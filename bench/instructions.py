"""CPU work per job, counted, not timed: `python -m bench.instructions [--jobs N] [--ref REV]`.

This machine's CPU speed moves by up to 40% within a minute (the host's other guests), so
two builds' jobs/s only differ beyond its noise when they differ a lot. valgrind's callgrind
counts the instructions a process executes, which does not depend on what else the machine
does. This runs run 2's in-process scenario (`3 x 256`, no-op jobs) under callgrind twice,
with N and with 2N jobs, and divides the difference by N: start-up, imports and the CPU
probe cancel out. It prints instructions per job, in all and by library (the interpreter,
SQLite, libc, uvloop, ...). With `--ref REV` it also checks out REV into a temporary
worktree and measures it the same way, for an A/B in one run. Each measurement takes about
a minute per 3,000 jobs. Not part of `make bench`; it needs valgrind (`apt install
valgrind`).

What it does not count: time waited (fsyncs, the GIL, the other thread), and the kernel's
work. The batch sizes still depend on timing, so per-commit costs (SQLite's, libc's) move
by a few percent between runs; compare differences above ~3%. One start-up cost lands in
one of the two runs but not the other on this machine, and shows as a library with ~15 K
per job at N = 3,000 (libcrypto or cryptography's `_rust`; no-op jobs run no crypto):
leave it out of a comparison.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run inside valgrind: the in-process scenario of bench.throughput, N jobs.
SCENARIO = """
import argparse, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import uvloop
import provena_jobd
from bench.throughput import _inproc
assert provena_jobd.__file__.startswith(sys.argv[1]), provena_jobd.__file__  # not the venv's
args = argparse.Namespace(inproc_jobs=int(sys.argv[2]), max_workers=3, concurrency=256,
                          warmup=50, inproc_chunk=1000, inproc_lanes=4)
with tempfile.TemporaryDirectory() as folder:
    uvloop.run(_inproc(args, Path(folder) / "jobd.db"))
"""
_LINE = re.compile(r"\s*([\d,]+) \([^)]*\)\s+(.*?)(?:\[(.*)\])?\s*$")


def by_library(profile: Path) -> collections.Counter[str]:
    """Instructions of a callgrind profile, summed by the shared object they ran in."""
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(profile)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: collections.Counter[str] = collections.Counter()
    for line in annotated.splitlines():
        match = _LINE.match(line)
        if match and "PROGRAM TOTALS" not in line:
            library = Path(match.group(3) or "?").name
            counts[library] += int(match.group(1).replace(",", ""))
    return counts


def count(tree: Path, python: Path, jobs: int, folder: Path) -> collections.Counter[str]:
    """Instructions by library of the scenario with `jobs` jobs, on the code in `tree`."""
    script = folder / "scenario.py"
    script.write_text(SCENARIO)
    profile = folder / f"callgrind-{jobs}.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", str(python),
         str(script), str(tree), str(jobs)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return by_library(profile)


def per_job(tree: Path, python: Path, jobs: int) -> dict[str, float]:
    """Instructions per job by library: (the run with 2N jobs - the run with N) / N."""
    with tempfile.TemporaryDirectory(prefix="jobd-instructions-") as tmp:
        small = count(tree, python, jobs, Path(tmp))
        large = count(tree, python, 2 * jobs, Path(tmp))
    libraries = set(small) | set(large)
    return {name: (large[name] - small[name]) / jobs for name in libraries}


def show(label: str, counts: dict[str, float]) -> None:
    """Print the total and the libraries that take at least 1,000 instructions per job."""
    total = sum(counts.values())
    print(f"{label}: {total / 1000:,.1f} K instructions per job")
    for name, value in sorted(counts.items(), key=lambda item: -item[1]):
        if value >= 1000:
            print(f"  {value / 1000:8.1f} K  {name}")


def main() -> None:
    """Measure this tree, and `--ref` if given, and print both and their difference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000, help="N: runs with N and 2N jobs")
    parser.add_argument("--ref", help="also measure this git revision (a temporary worktree)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt install valgrind)")
    python = Path(sys.executable)
    here = per_job(ROOT, python, args.jobs)
    if args.ref is None:
        show("this tree", here)
        return
    with tempfile.TemporaryDirectory(prefix="jobd-ref-") as tmp:
        ref_tree = Path(tmp) / "ref"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(ref_tree), args.ref],
            check=True,
            capture_output=True,
        )
        try:
            # The reference's own code is imported first (its path goes first on sys.path).
            there = per_job(ref_tree, python, args.jobs)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(ref_tree)], check=False, capture_output=True)  # fmt: skip
    show(args.ref, there)
    show("this tree", here)
    change = sum(here.values()) / sum(there.values()) - 1
    print(f"this tree / {args.ref}: {change:+.1%} instructions per job")


if __name__ == "__main__":
    main()
