"""The job catalog: every job type and sub type this jobd accepts.

The reference's types are always there; `[jobs.<SUB_TYPE>]` tables with a `job_type` declare
new ones for deployments that need jobs the reference does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from .models import JOB_TYPE_OF_SUB_TYPE, JobType


class DeclaresJobType(Protocol):
    """A `[jobs.<SUB_TYPE>]` table, as far as the catalog cares."""

    @property
    def job_type(self) -> str | None:
        """The job type a new sub type belongs to (None for the reference's sub types)."""
        ...


class JobCatalog:
    """Which sub types exist and the job type each belongs to."""

    def __init__(self, declared: Mapping[str, DeclaresJobType] | None = None) -> None:
        self._type_of: dict[str, str] = {
            sub_type.value: job_type.value for sub_type, job_type in JOB_TYPE_OF_SUB_TYPE.items()
        }
        for sub_type, route in (declared or {}).items():
            if sub_type not in self._type_of and route.job_type is not None:
                self._type_of[sub_type] = route.job_type
        types = [t.value for t in JobType]
        self.job_types: tuple[str, ...] = tuple(
            types + sorted(set(self._type_of.values()) - set(types))
        )
        self.sub_types: tuple[str, ...] = tuple(self._type_of)

    def job_type_of(self, sub_type: str) -> str | None:
        """The job type a sub type belongs to, or None if it is unknown."""
        return self._type_of.get(sub_type)
