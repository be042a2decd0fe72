"""Retention: the pruner deletes old finished jobs, leaves the rest, logs and counts it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from provena_jobd.clock import FakeClock
from provena_jobd.metrics import sample
from provena_jobd.models import JobStatus, LaunchJobRequest
from provena_jobd.server import JobdServer
from tests.helpers import job_in, settings_for

DAY = 86_400.0
WAKE: dict[str, Any] = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}


async def test_the_pruner_keeps_recent_and_unfinished_jobs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(1_800_000_000.123456)  # not on a millisecond
    settings = settings_for(
        tmp_path,
        retention={"keep_finished_s": 100, "batch_size": 2},
        pool={"REGISTRY": {"cold_start_s": 1e9}},  # REGISTRY jobs never start
    )
    server = JobdServer(settings, clock=clock)
    await server.start()
    try:
        old = [await server.service.launch(LaunchJobRequest(**WAKE), "alice") for _ in range(5)]
        for job in old:
            await job_in(server.store, job.session_id, JobStatus.SUCCEEDED)
        await clock.advance(60)
        recent = await server.service.launch(LaunchJobRequest(**WAKE), "alice")
        await job_in(server.store, recent.session_id, JobStatus.SUCCEEDED)
        wake_registry = {**WAKE, "job_type": "REGISTRY", "job_sub_type": "REGISTRY_WAKE_UP"}
        waiting = await server.service.launch(LaunchJobRequest(**wake_registry), "alice")

        # 110 s after the first jobs finished, 50 s after the recent one.
        with caplog.at_level(logging.INFO, logger="provena_jobd.workers.retention"):
            pruned = await server.pruner.run_once(clock.now() + 50)

        assert pruned.jobs == 5  # in passes of two: the sweep went on to the end
        assert all([await server.store.get(job.session_id) is None for job in old])
        assert await server.store.get(recent.session_id) is not None
        assert await server.store.get(waiting.session_id) is not None
        [said] = [r for r in caplog.records if getattr(r, "action", None) == "jobs_pruned"]
        # Its time to the millisecond, as every epoch time jobd shows.
        assert said.getMessage().endswith("that ended before 1800000010.123")
        text = await server.metrics_text()
        assert sample(text, "jobd_pruned_total", {"kind": "jobs"}) == 5
    finally:
        await server.stop(grace_s=0)


def test_forever_and_zero_keep_everything(tmp_path: Path) -> None:
    for keep in ("forever", 0):
        settings = settings_for(tmp_path, retention={"keep_finished_s": keep})
        assert not settings.retention.enabled
    assert settings_for(tmp_path).retention.enabled  # on by default: 30 days
    assert settings_for(tmp_path).retention.keep_finished_s == 30 * DAY
