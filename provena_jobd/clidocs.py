"""Write docs/cli.md from the `--help` texts: `python -m provena_jobd.clidocs > docs/cli.md`.

The test suite compares docs/cli.md with `render()`, so the page cannot drift from the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from .cli import main

WIDTH = 78  # what click uses without a terminal (COLUMNS=80)
HEADER = """\
# The `jobd` command

<!-- Generated from the `--help` texts by `python -m provena_jobd.clidocs > docs/cli.md`;
     tests/client/test_cli_docs.py fails when this page and the CLI differ. -->

Every command and its options, exactly as `jobd ... --help` prints them. Running the server
for tests (`jobd serve --ephemeral`, the pytest fixtures) is described in
[testing.md](testing.md).
"""


def commands(
    command: click.Command, context: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    """`command` and every command under it, depth first, in `--help` order."""
    yield command, context
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                yield from commands(sub, click.Context(sub, info_name=name, parent=context))


def render() -> str:
    """The markdown page: each command's full `--help` text."""
    parts = [HEADER]
    root = click.Context(main, info_name="jobd", terminal_width=WIDTH)
    for command, context in commands(main, root):
        parts.append(f"\n## `{context.command_path}`\n\n```text\n")
        parts.append(command.get_help(context).rstrip() + "\n```\n")
    return "".join(parts)


if __name__ == "__main__":  # pragma: no cover - run by hand to regenerate the page
    click.echo(render(), nl=False)
