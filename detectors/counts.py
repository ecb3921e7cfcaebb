"""Exact per-checkpoint declaration counts over sliding event-time windows.

Model
-----
A checkpoint's recent declarations are kept in *hour buckets*: bucket ``h`` holds every
counted declaration whose ``scanned_at`` lies in ``[h * 3600 s, (h + 1) * 3600 s)``, as
``declaration key -> (scanned_at in ms, flags, input offset)``. The declaration key is a
64-bit digest of ``declaration_id``, so adding the same declaration twice changes nothing:
counting is idempotent, which makes at-least-once processing (replays after a crash)
exact. The input offset that first counted it tells the two kinds of repeat apart: the
*same record* again (a replay after a crash, which the detectors may still need) and
*another record* of the same declaration (a retried publish: a duplicate everywhere).

A window of length ``W`` ending at ``t`` counts the declarations with
``t - W < scanned_at``; declarations stamped slightly after ``t`` (front-end clock skew,
bounded by ingest) count as "now". Windows are answered at read time, so they slide
continuously and are not aligned to the clock.

Late declarations count wherever they fall: a bucket is kept while it can still overlap
the longest window (``horizon_ms`` behind the newest ``scanned_at`` seen for the
checkpoint, default 25 h); a declaration older than that cannot fall in any window ending
at or after the newest one and is reported as ``beyond_horizon`` by the caller.

Cold start: no buckets, every count 0.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from uuid import UUID

from detectors.errors import StateDecodeError
from detectors.flags import DeclarationFlags
from vhc_common.timebase import HOUR_MS, hour_of

__all__ = [
    "DEFAULT_HORIZON_MS",
    "HOUR_MS",
    "AddOutcome",
    "CountedDeclaration",
    "HourBucket",
    "WindowCounts",
    "declaration_key",
    "hour_of",
    "hours_overlapping",
    "window_counts",
]

DEFAULT_HORIZON_MS = 25 * HOUR_MS
_ENTRY = struct.Struct("<QqBq")
_VERSION = 2


def declaration_key(declaration_id: UUID) -> int:
    """A 64-bit digest of the declaration id (hashed, so non-random UUID forms spread too)."""
    return int.from_bytes(hashlib.blake2b(declaration_id.bytes, digest_size=8).digest(), "big")


def hours_overlapping(*, end_ms: int, window_ms: int) -> range:
    """Bucket hours that can hold declarations of the window ``(end - window, end]``.

    One more hour at the end covers declarations stamped slightly in the future.
    """
    if window_ms <= 0:
        raise ValueError(f"window_ms must be > 0, got {window_ms}")
    return range(hour_of(end_ms - window_ms), hour_of(end_ms) + 2)


@dataclass(frozen=True, slots=True)
class CountedDeclaration:
    """A declaration as the counts see it, with the input offset of its record."""

    key: int
    scanned_at_ms: int
    flags: DeclarationFlags
    offset: int = -1


class AddOutcome(Enum):
    """What adding a declaration to a bucket found."""

    COUNTED = "counted"
    #: the same record again (same input offset): a replay, counted already
    REPLAYED = "replayed"
    #: another record of a declaration counted already: a duplicate
    DUPLICATE = "duplicate"


class HourBucket:
    """The counted declarations of one checkpoint in one event-time hour.

    Mutable on purpose: a batch of events updates one decoded bucket in place and is then
    encoded once. It has no I/O; the caller stores ``encode()`` and restores with
    ``decode()``.
    """

    __slots__ = ("_packed", "_packed_n", "entries", "hour")

    def __init__(self, hour: int,
                 entries: dict[int, tuple[int, int, int]] | None = None) -> None:
        self.hour = hour
        self.entries: dict[int, tuple[int, int, int]] = entries if entries is not None else {}
        # Entries are only ever added (in insertion order): the encoding of the first
        # ``_packed_n`` stays valid, and encoding again packs only what came since.
        self._packed: bytes | None = None
        self._packed_n = 0

    def add(self, item: CountedDeclaration) -> AddOutcome:
        """Count ``item`` unless it is counted already (then nothing changes)."""
        if hour_of(item.scanned_at_ms) != self.hour:
            raise ValueError(
                f"declaration at {item.scanned_at_ms} ms is not in hour {self.hour}"
            )
        known = self.entries.get(item.key)
        if known is not None:
            return AddOutcome.REPLAYED if known[2] == item.offset else AddOutcome.DUPLICATE
        self.entries[item.key] = (item.scanned_at_ms, int(item.flags), item.offset)
        return AddOutcome.COUNTED

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """``(scanned_at_ms, flags)`` of every counted declaration."""
        return ((ts, fl) for ts, fl, _ in self.entries.values())

    def encode(self) -> bytes:
        """The stored form: a version byte and the entries in the order they came. Only
        entries added since the last ``encode`` or ``decode`` are packed (a busy
        checkpoint's hour holds thousands, and a batch adds a few)."""
        if self._packed is None:
            self._packed, self._packed_n = bytes([_VERSION]), 0
        if self._packed_n < len(self.entries):
            fresh = itertools.islice(self.entries.items(), self._packed_n, None)
            self._packed += b"".join(_ENTRY.pack(k, ts, fl, off) for k, (ts, fl, off) in fresh)
            self._packed_n = len(self.entries)
        return self._packed

    @classmethod
    def decode(cls, hour: int, data: bytes | None) -> HourBucket:
        if not data:
            return cls(hour)
        if data[0] != _VERSION or (len(data) - 1) % _ENTRY.size:
            raise StateDecodeError(
                f"hour bucket {hour}: version {data[0]}, {len(data)} bytes; "
                f"expected version {_VERSION} and 1 + n * {_ENTRY.size} bytes"
            )
        entries = {k: (ts, fl, off)
                   for k, ts, fl, off in _ENTRY.iter_unpack(memoryview(data)[1:])}
        bucket = cls(hour, entries)
        if len(entries) * _ENTRY.size == len(data) - 1:  # no key twice: the text is canonical
            bucket._packed, bucket._packed_n = bytes(data), len(entries)
        return bucket


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Declaration counts in one window (the contract's stats fields)."""

    total: int = 0
    symptomatic: int = 0
    fever: int = 0
    contact_f0: int = 0
    contact_f1: int = 0
    travel_from_outbreak: int = 0


def window_counts(
    buckets: Iterable[HourBucket], *, end_ms: int, window_ms: int
) -> WindowCounts:
    """Count declarations with ``end_ms - window_ms < scanned_at`` in ``buckets``."""
    if window_ms <= 0:
        raise ValueError(f"window_ms must be > 0, got {window_ms}")
    start_ms = end_ms - window_ms
    total = symptomatic = fever = f0 = f1 = travel = 0
    for bucket in buckets:
        for scanned_at_ms, flags in bucket:
            if scanned_at_ms <= start_ms:
                continue
            total += 1
            symptomatic += flags & DeclarationFlags.SYMPTOMATIC != 0
            fever += flags & DeclarationFlags.FEVER != 0
            f0 += flags & DeclarationFlags.CONTACT_F0 != 0
            f1 += flags & DeclarationFlags.CONTACT_F1 != 0
            travel += flags & DeclarationFlags.TRAVEL_FROM_OUTBREAK != 0
    return WindowCounts(total, symptomatic, fever, f0, f1, travel)
