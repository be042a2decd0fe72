"""docs/cli.md is the CLI's own `--help` text: regenerate it, never edit it by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provena_jobd.clidocs import render

REPO = Path(__file__).resolve().parents[2]
JOBD = Path(sys.executable).parent / "jobd"
REGENERATE = "python -m provena_jobd.clidocs > docs/cli.md"


def test_docs_cli_md_is_up_to_date() -> None:
    written = (REPO / "docs" / "cli.md").read_text()
    assert written == render(), f"docs/cli.md is out of date; regenerate it: {REGENERATE}"


@pytest.mark.parametrize("command", [["launch"], ["jobs", "watch"], ["serve"]])
def test_the_page_shows_what_help_prints(command: list[str]) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JOBD_")}
    environment["COLUMNS"] = "80"
    printed = subprocess.run(
        [str(JOBD), *command, "--help"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert f"## `jobd {' '.join(command)}`\n\n```text\n{printed.rstrip()}\n```\n" in render()


def test_every_command_has_a_section() -> None:
    page = render()
    for name in ["launch", "jobs list", "jobs show", "jobs watch", "batch show", "retry",
                 "cancel", "pool", "serve", "token create", "workflow"]:  # fmt: skip
        assert f"## `jobd {name}`" in page
