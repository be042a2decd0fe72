"""`[jobs.*] callable` naming a module beside jobd.toml: `jobd serve --config` finds it without
PYTHONPATH, as the file's relative paths are taken from its folder, and installed modules
still win over a file there of the same name."""

from __future__ import annotations

from pathlib import Path

import pytest

from provena_jobd.client import JobdClient, job_result
from provena_jobd.models import JobStatus
from tests.process import JobdLauncher

pytestmark = pytest.mark.acceptance

CONFIG = """\
[jobs.NAP]
job_type = "NAPS"
handler = "python"
callable = "mypkg.slow:nap"
"""
# The handler reports where `colorsys` (a standard module jobd does not import) came from.
HANDLER = """\
import colorsys


async def nap(context, payload):
    return {"slept": payload["s"], "colorsys": colorsys.__file__}
"""


def project(folder: Path) -> Path:
    """A user's folder: jobd.toml, the package `mypkg` beside it, and a `colorsys.py` that
    must not replace the standard one. Returns the config file."""
    (folder / "mypkg").mkdir(parents=True)
    (folder / "mypkg" / "__init__.py").write_text("")
    (folder / "mypkg" / "slow.py").write_text(HANDLER)
    (folder / "colorsys.py").write_text('raise ImportError("the project\'s colorsys.py won")\n')
    config = folder / "jobd.toml"
    config.write_text(CONFIG)
    return config


async def test_a_callable_beside_the_config_file_is_found(
    jobd: JobdLauncher, tmp_path: Path
) -> None:
    config = project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"  # the working directory is not the config's folder
    elsewhere.mkdir()

    server = jobd.start(
        "--config", str(config), "--port", "0", "--db", str(tmp_path / "jobd.db"), cwd=elsewhere
    )  # before: `[jobs.NAP]: cannot load callable 'mypkg.slow:nap': No module named 'mypkg'`

    async with JobdClient(server.url) as client:
        launched = await client.launch("NAPS", "NAP", {"s": 1})
        job = await client.wait(launched.session_id, timeout_s=10)
    assert job.status is JobStatus.SUCCEEDED, job.info
    result = job_result(job)
    assert result["slept"] == 1
    assert not Path(result["colorsys"]).is_relative_to(tmp_path)  # the standard module
