"""Shared fixtures. A developer's JOBD_* variables never leak into the tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_jobd_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("JOBD_"):
            monkeypatch.delenv(name)
    yield


pytest_plugins = ["tests.postgres"]
