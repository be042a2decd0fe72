"""The README's map of the code names every module of the package, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

import provena_jobd

PACKAGE = Path(provena_jobd.__file__).parent
README = PACKAGE.parent / "README.md"


def mapped_modules() -> set[str]:
    """The modules the README's code map names, as paths inside the package."""
    text = README.read_text()
    block = text[text.index("```\nprovena_jobd/\n") :]
    block = block[: block.index("\n```", 4)]
    named: set[str] = set()
    folder = ""
    for line in block.splitlines()[2:]:
        entry = line.strip().split()[0]
        if not line.startswith("    "):  # a top-level entry: a module or a folder
            folder = entry if entry.endswith("/") else ""
        named.update(folder + name for name in re.findall(r"\b\w+\.py\b", line))
    return named


def package_modules() -> set[str]:
    """Every module of the package (package `__init__` files only re-export or are empty)."""
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent.name == "cli"
    }


def test_the_readme_maps_every_module() -> None:
    assert sorted(package_modules() - mapped_modules()) == []


def test_the_readme_names_no_module_that_is_gone() -> None:
    assert sorted(mapped_modules() - package_modules()) == []
