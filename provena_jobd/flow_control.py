"""Pause and start limits per job type: the words jobs wait with, and the admin operations.

Both are enforced in the store's claim (`JobStore.claim_flow`), in the database, so they
hold for every node sharing it and survive a restart.
"""

from __future__ import annotations

from collections.abc import Callable

from .catalog import JobCatalog
from .clock import Clock
from .config import PoolSettings
from .errors import BadRequest
from .queue.store import Claim, FlowClaim, JobStore, Pause, StartLimits
from .scheduling_models import PausedResponse

PAUSED_INFO = (
    "Waiting: job type {job_type} is paused by an administrator; it runs once the type is resumed."
)
LIMITED_INFO = (
    "Waiting: job type {job_type} is held back by its start limit ({limits}); "
    "it starts as the limit allows."
)


def start_limits(settings: PoolSettings) -> StartLimits:
    """The start limits a pool's settings ask for."""
    return StartLimits(per_s=settings.max_starts_per_s, per_min=settings.max_starts_per_min)


def describe(limits: StartLimits) -> str:
    """`2 per second, 50 per minute`."""
    parts = []
    if limits.per_s is not None:
        parts.append(f"{limits.per_s} per second")
    if limits.per_min is not None:
        parts.append(f"{limits.per_min} per minute")
    return ", ".join(parts)


def flow_claim(claim: Claim, settings: PoolSettings) -> FlowClaim:
    """A claim of `claim.job_type` within its pause and start limits."""
    limits = start_limits(settings)
    return FlowClaim(
        claim=claim,
        limits=limits,
        paused_info=PAUSED_INFO.format(job_type=claim.job_type),
        limited_info=LIMITED_INFO.format(job_type=claim.job_type, limits=describe(limits)),
    )


class FlowControl:
    """Pauses and resumes job types, for the admin API and the CLI."""

    def __init__(
        self,
        store: JobStore,
        catalog: JobCatalog,
        clock: Clock,
        changed: Callable[[str, bool], None],
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.changed = changed  # tell this node's pool at once (others see it within a poll)

    async def set_paused(self, job_type: str, paused: bool) -> PausedResponse:
        """Pause or resume one job type; running jobs finish, launches are still accepted."""
        if job_type not in self.catalog.job_types:
            known = ", ".join(self.catalog.job_types)
            raise BadRequest(f"Unknown job type {job_type!r}; known: {known}.")
        info = PAUSED_INFO.format(job_type=job_type)
        await self.store.set_paused(
            Pause(job_type=job_type, paused=paused, info=info, now=self.clock.now())
        )
        self.changed(job_type, paused)
        return await self.paused()

    async def paused(self) -> PausedResponse:
        """The paused job types."""
        return PausedResponse(paused=await self.store.paused_types())
