"""Fixtures shared by the end-to-end modules: `start` runs real `jobd serve` processes."""

from __future__ import annotations

from tests.e2e.test_jobs_end_to_end import start

__all__ = ["start"]
