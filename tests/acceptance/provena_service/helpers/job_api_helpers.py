import json
import os

import aiohttp
from ProvenaInterfaces.AsyncJobAPI import AdminLaunchJobRequest, AdminLaunchJobResponse
from ProvenaInterfaces.AsyncJobModels import JobSubType, JobType, ProvLodgeCreationPayload

from EcsSqsPythonTools.Settings import JobBaseSettings


async def launch_generic_job(
    payload: AdminLaunchJobRequest, settings: JobBaseSettings
) -> AdminLaunchJobResponse:
    endpoint = settings.job_api_endpoint + "/jobs/admin/launch"
    request = json.loads(payload.json(exclude_none=True))
    # Provena uses its service account's token here; jobd in auth mode "none" needs none.
    token = os.environ.get("SERVICE_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(endpoint, json=request, headers=headers) as response,
    ):
        if response.status != 200:
            body = await response.text()
            raise Exception(f"Non 200 status code ({response.status}) from Job API. Body: {body}.")
        return AdminLaunchJobResponse.parse_obj(await response.json())


async def submit_lodge_create_activity(
    username: str, payload: ProvLodgeCreationPayload, settings: JobBaseSettings
) -> str:
    request = AdminLaunchJobRequest(
        username=username,
        job_type=JobType.PROV_LODGE,
        job_sub_type=JobSubType.LODGE_CREATE_ACTIVITY,
        job_payload=json.loads(payload.json(exclude_none=True)),
    )
    return (await launch_generic_job(payload=request, settings=settings)).session_id
