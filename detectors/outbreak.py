"""Which areas are outbreak areas at a given event time.

Staff replace the whole list (``PUT /v1/outbreak-areas``); each replacement is an event
with the time it takes effect. A declaration is judged against the list in force at its
``scanned_at``, so replaying recorded traffic with its list changes gives the same
answers as live. Before the first list, no area is an outbreak area.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass

from detectors.errors import decoding

__all__ = ["OutbreakAreaChange", "OutbreakAreaHistory"]


@dataclass(frozen=True, slots=True)
class OutbreakAreaChange:
    effective_from_ms: int
    areas: frozenset[str]


class OutbreakAreaHistory:
    """The list changes, ordered by ``effective_from_ms``; older than needed ones pruned."""

    __slots__ = ("_changes", "_starts")

    def __init__(self, changes: list[OutbreakAreaChange] | None = None) -> None:
        self._changes = sorted(changes or [], key=lambda c: c.effective_from_ms)
        self._starts = [c.effective_from_ms for c in self._changes]

    def apply(self, change: OutbreakAreaChange) -> OutbreakAreaHistory:
        """A new history with ``change`` (a change at the same instant replaces it)."""
        kept = [c for c in self._changes if c.effective_from_ms != change.effective_from_ms]
        return OutbreakAreaHistory([*kept, change])

    def areas_at(self, epoch_ms: int) -> frozenset[str]:
        i = bisect.bisect_right(self._starts, epoch_ms)
        return self._changes[i - 1].areas if i else frozenset()

    def current(self) -> frozenset[str]:
        return self._changes[-1].areas if self._changes else frozenset()

    def prune(self, before_ms: int) -> OutbreakAreaHistory:
        """Drop changes no time at or after ``before_ms`` can need (keeps the one in force)."""
        i = bisect.bisect_right(self._starts, before_ms)
        return OutbreakAreaHistory(self._changes[max(0, i - 1):])

    def encode(self) -> str:
        return json.dumps([[c.effective_from_ms, sorted(c.areas)] for c in self._changes])

    @classmethod
    def decode(cls, data: str | None) -> OutbreakAreaHistory:
        if not data:
            return cls()
        with decoding("the outbreak-area history"):
            return cls([OutbreakAreaChange(int(t), frozenset(str(x) for x in a))
                        for t, a in json.loads(data)])

    def __len__(self) -> int:
        return len(self._changes)
