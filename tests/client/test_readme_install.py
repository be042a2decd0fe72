"""README's pytest example, as a user of another project meets it: pip-install provena-jobd
with the extra README names into a fresh virtualenv outside the repository, copy the example
test file and the pytest configuration README gives there, run pytest in that folder. It must
pass without a warning.

The example is read from README.md itself, so the README and this test cannot drift. Needs
the package index (as `make install` does); pip's cache keeps the one install per module
quick.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Use jobd in your tests"
NOT_SOURCE = (".git", ".venv", "build", "*.egg-info", "*_cache", "test-output", "jobd.db*")


def readme_section() -> str:
    """The README's 'Use jobd in your tests' section."""
    readme = (REPO / "README.md").read_text()
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return readme[start : end if end != -1 else None]


def readme_install_requirement() -> str:
    """What README tells a user to pip-install (`provena-jobd[extra]`)."""
    match = re.search(r"pip install '(provena-jobd(\[[a-z-]+\])?)'", readme_section())
    assert match, "README's test section no longer says what to pip install"
    return match.group(1)


def readme_example() -> str:
    """The README's python example for the fixtures."""
    blocks = re.findall(r"```python\n(.*?)```", readme_section(), re.DOTALL)
    assert blocks, "README's test section has no python example"
    return str(blocks[0])


def readme_pytest_config() -> str:
    """The pytest configuration README tells a user to add (a `pyproject.toml` block)."""
    blocks = re.findall(r"```toml\n(.*?)```", readme_section(), re.DOTALL)
    assert blocks, "README's test section no longer gives the pytest configuration"
    return str(blocks[0])


def clean_environment() -> dict[str, str]:
    """The caller's environment without anything pointing at this repository or its venv."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("JOBD_")}


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv, outside the repository, with provena-jobd installed as README says."""
    folder = tmp_path_factory.mktemp("user-project")
    assert REPO not in folder.parents
    venv.create(folder / "venv", with_pip=True)
    python = folder / "venv" / "bin" / "python"
    # The requirement README names, installed from a copy of this checkout instead of the
    # index (a build in the checkout itself would leave build/ behind, stale files and all).
    source = folder / "provena-jobd"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    requirement = readme_install_requirement().replace("provena-jobd", str(source), 1)
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", requirement],
        cwd=folder,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert installed.returncode == 0, installed.stderr
    return folder


@pytest.mark.timeout(600)
def test_the_readme_example_passes_in_another_project(user_venv: Path) -> None:
    project = user_venv / "tests"
    project.mkdir()
    example = readme_example()
    (project / "test_with_jobd.py").write_text(example)
    (project / "pyproject.toml").write_text(readme_pytest_config())
    ran = subprocess.run(
        [
            str(user_venv / "venv" / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"{example.count('async def test_')} passed" in ran.stdout, ran.stdout
    # pytest-asyncio's PytestDeprecationWarning for an unset fixture loop scope, or any other.
    assert "warning" not in (ran.stdout + ran.stderr).lower(), ran.stdout + ran.stderr


@pytest.mark.timeout(600)
def test_the_install_is_not_this_checkout_in_disguise(user_venv: Path) -> None:
    # The example must have run against the installed copy, not this repository's sources.
    found = subprocess.run(
        [
            str(user_venv / "venv" / "bin" / "python"),
            "-c",
            "import provena_jobd, pytest_asyncio; print(provena_jobd.__file__)",
        ],
        cwd=user_venv,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert str(user_venv) in found.stdout
    assert sys.prefix not in found.stdout
