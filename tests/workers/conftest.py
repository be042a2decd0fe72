"""The worker suites share test_pool's fixtures: a fake clock and servers on one database."""

from tests.workers.test_pool import clock, start  # noqa: F401 - fixtures
