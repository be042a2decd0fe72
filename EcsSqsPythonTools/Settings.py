"""The worker's settings, read from the environment (or `.env`) as Provena's are."""

from ProvenaInterfaces.AsyncJobModels import JobType
from pydantic import BaseSettings


class JobBaseSettings(BaseSettings):
    """The reference's fields, plus where jobd is and the token to use there."""

    # Seconds without work after which the worker exits
    idle_timeout: float

    # The job type this worker runs
    job_type: JobType

    # The Job API's URL: jobd's, which is also where workers claim jobs
    job_api_endpoint: str

    # jobd's URL for the worker protocol, when it differs from job_api_endpoint
    jobd_url: str | None = None

    # A token with the worker role (not needed in jobd's auth mode "none")
    jobd_token: str | None = None

    # How this worker names itself to jobd (jobd sets it for the processes it starts)
    jobd_worker_id: str | None = None

    # The reference's AWS settings: accepted so existing environments still load, unused
    queue_url: str = ""
    status_table_name: str = ""
    sns_topic_arn: str = ""

    class Config:
        """Read a `.env` file too, as the reference does."""

        env_file = ".env"
