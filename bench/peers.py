"""The yardsticks measured in the same run as jobd: huey's SQLite storage and the raw loop.

Absolute rates move with the machine (its fsync rate above all) and with whatever else runs
on it; a ratio of two rates measured one right after the other moves much less. So each
throughput measurement runs its peer at once afterwards and reports the ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import raw_sqlite
from bench.report import Report, Row, at_least
from bench.server import _CHILDREN, die_with_parent

REPO = Path(__file__).resolve().parents[1]


def huey_rate(n: int, folder: Path, timeout_s: float) -> float | None:
    """huey's drain rate for `n` no-op tasks (bench/huey_peer.py), or None without huey."""
    try:
        import huey  # noqa: F401
    except ImportError:
        return None
    with subprocess.Popen(
        [sys.executable, "-m", "bench.huey_peer", str(n), str(folder)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,
    ) as process:
        _CHILDREN.append(process)
        out, err = process.communicate(timeout=timeout_s)
    if process.returncode != 0:
        raise RuntimeError(f"bench/huey_peer.py failed: {err.decode(errors='replace')[-500:]}")
    return float(json.loads(out)["jobs_per_s"])


def raw_rate(n: int, folder: Path) -> float:
    """The raw batched SQLite loop's rate for `n` jobs (bench/raw_sqlite.py)."""
    return raw_sqlite.drain_rate(folder / "raw.db", n)


def add_ratio(
    report: Report, number: str, what: str, rate: float, peer: str, peer_rate: float, target: float
) -> float:
    """Rows for the peer's rate and jobd's ratio to it; the ratio becomes the run's score."""
    report.add(Row(f"{number}", f"  {peer}, measured right after", f"{peer_rate:,.0f} jobs/s"))
    ratio = rate / peer_rate
    ok, verdict = at_least(ratio, target)
    report.add(Row(number, f"  {what} / {peer}", f"{ratio:.2f}x", f">= {target:g}x", ok, verdict))
    report.score, report.unit = ratio, f"x {peer}"
    return ratio


def no_huey(report: Report, number: str) -> None:
    """Say why there is no ratio to huey."""
    report.add(Row(number, "  huey", "not installed", verdict="SKIPPED"))
    report.notes.append(f"{number}: huey is not installed; `make bench` installs the bench extra.")
