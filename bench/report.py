"""Results: the rows of the table, verdicts against targets, percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# -- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    number: str
    label: str
    value: str
    target: str = ""
    ok: bool | None = None
    verdict: str = ""


@dataclass
class Report:
    """Everything measured, printed as one table at the end."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    contended: bool = False
    other_cores: float = 0.0  # the most CPU other processes used during one of its parts
    score: float = math.nan  # the headline figure, to pick the median of repeated runs
    unit: str = ""

    def merge(self, other: Report) -> None:
        """Take in the rows, notes and figures of one measurement."""
        self.rows += other.rows
        self.notes += other.notes
        self.data.update(other.data)

    def add(self, row: Row) -> None:
        """Record a row and show it at once, so a long run shows progress."""
        self.rows.append(row)
        mark = f"  [{row.verdict}]" if row.verdict else ""
        target = f"  (target {row.target})" if row.target else ""
        print(f"    {row.label}: {row.value}{target}{mark}", flush=True)


def at_least(value: float, target: float) -> tuple[bool, str]:
    """Verdict for a higher-is-better figure."""
    if value >= target:
        return True, "ok"
    return False, f"MISS: {100 * (1 - value / target):.0f}% short"


def at_most(value: float, target: float) -> tuple[bool, str]:
    """Verdict for a lower-is-better figure."""
    if value <= target:
        return True, "ok"
    return False, f"MISS: {value / target:.1f}x the target"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of unsorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def print_table(report: Report, header: list[str]) -> None:
    """Print the results as an aligned table."""
    titles = ("#", "measurement", "result", "target", "verdict")
    cells = [(r.number, r.label, r.value, r.target, r.verdict) for r in report.rows]
    widths = [max(len(t), *(len(c[i]) for c in cells)) for i, t in enumerate(titles)]
    line = "  ".join("-" * w for w in widths)
    print()
    print("=" * len(line))
    for text in header:
        print(text)
    print("=" * len(line))
    print("  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip())
    print(line)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    print(line)
    for note in report.notes:
        print(f"note: {note}")
    print(flush=True)
