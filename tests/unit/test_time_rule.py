"""The README's rule "only clock.py reads time", for what ruff's banned-api cannot see.

Ruff bans `time.time`, `time.monotonic`, `datetime.now` and the like by their imported names
(TID251, pyproject.toml); an event loop's `loop.time()` is a method of an object, so it is
checked here, with the other calls spelled as they would be written.
"""

from __future__ import annotations

import re
from pathlib import Path

import provena_jobd

PACKAGE = Path(provena_jobd.__file__).parent
READS_TIME = re.compile(
    r"time\.time\(|time\.monotonic\(|time\.perf_counter\(|datetime\.now\(|loop\.time\("
)


def test_only_clock_py_reads_time() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "clock.py" or path.parent != PACKAGE
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if READS_TIME.search(line)
    ]
    assert offenders == []


def test_the_check_finds_a_time_read() -> None:
    assert READS_TIME.search("deadline = loop.time() + timeout_s")
    assert READS_TIME.search("started = time.perf_counter()")
    assert not READS_TIME.search("started = monotonic()")
