"""The worker suites share pool_helpers' fixtures: a fake clock and servers on one database."""

from tests.workers.pool_helpers import clock, make_pool, start  # noqa: F401 - fixtures
