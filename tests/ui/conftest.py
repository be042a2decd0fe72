"""Fixtures shared by the browser tests: `browser` (Debian's Chromium) and `serve` (a jobd)."""

from __future__ import annotations

from tests.ui.test_panel import browser, serve

__all__ = ["browser", "serve"]
