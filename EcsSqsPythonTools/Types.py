"""The callback's types, as Provena's `EcsSqsPythonTools.Types` defines them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Provena's worker code imports its job models through this module (`import *`).
from ProvenaInterfaces.AsyncJobModels import *  # noqa: F403
from ProvenaInterfaces.AsyncJobModels import JobSnsPayload, JobStatus

from EcsSqsPythonTools.Settings import JobBaseSettings


@dataclass
class CallbackResponse:
    """What a worker callback returns: the job's final status, its info and its result."""

    # The status of the response
    status: JobStatus
    # Any info if error
    info: str | None = None
    # The result payload - must fit the sub type's result model
    result: dict[str, Any] | None = None


# A callback takes a payload and the settings, and returns the callback response.
CallbackFunc = Callable[[JobSnsPayload, JobBaseSettings], CallbackResponse]
