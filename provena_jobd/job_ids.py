"""Session and batch ids: version-4 UUIDs whose first 48 bits are the launch time in ms.

The reference mints UUID4s and its clients expect them, so the ids keep version 4 and the
RFC 4122 variant. But a fully random key lands each new job on a random page of the
session-id index (and each new batch on a random page of the batch table): a commit of 64
launches then wrote ~64 index pages to the WAL. With the time first, as in UUIDv7, new keys
go to the end of the index, a few pages per commit. 74 random bits remain, from the
operating system's CSPRNG, so ids stay unguessable and unique.
"""

from __future__ import annotations

import os

_FILL = 4096  # bytes of randomness read per refill: one syscall per ~400 ids
_MS_BITS = 48


class _Entropy:
    """A buffer of `os.urandom` bytes handed out in slices (one syscall per refill)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0

    def take(self, n: int) -> int:
        """`n` fresh random bytes as an unsigned integer."""
        if self._at + n > len(self._buffer):
            self._buffer, self._at = os.urandom(_FILL), 0
        chunk = self._buffer[self._at : self._at + n]
        self._at += n
        return int.from_bytes(chunk, "big")

    def forget(self) -> None:
        """Drop the buffer (a forked child must not hand out its parent's bytes)."""
        self._buffer, self._at = b"", 0


_entropy = _Entropy()
os.register_at_fork(after_in_child=_entropy.forget)


def new_id(now: float) -> str:
    """A new id for a job or batch launched at `now` (seconds since the epoch)."""
    ms = int(now * 1000) & ((1 << _MS_BITS) - 1)
    random = _entropy.take(10)  # 80 bits; 74 are used
    value = (
        ms << 80
        | 0x4 << 76  # version 4
        | (random >> 68) << 64  # 12 random bits
        | 0b10 << 62  # the RFC 4122 variant
        | random & ((1 << 62) - 1)  # 62 random bits
    )
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
