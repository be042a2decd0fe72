"""Report links work until they expire, and only as signed."""

from __future__ import annotations

from provena_jobd.workers.reports import link_is_valid, sign

KEY = "k" * 64
NAME = "0" * 32 + ".docx"


def test_a_signed_link_is_valid_until_it_expires() -> None:
    signature = sign(KEY, NAME, 1_000)
    assert link_is_valid(KEY, NAME, 1_000, signature, now=999.9)
    assert not link_is_valid(KEY, NAME, 1_000, signature, now=1_000)


def test_a_link_cannot_be_stretched_or_moved() -> None:
    signature = sign(KEY, NAME, 1_000)
    assert not link_is_valid(KEY, NAME, 2_000, signature, now=500)
    assert not link_is_valid(KEY, "1" * 32 + ".docx", 1_000, signature, now=500)
    assert not link_is_valid("other" * 13, NAME, 1_000, signature, now=500)
