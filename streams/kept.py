"""Decoded states kept between batches, next to the stored form each came from.

A batch decodes a table value, changes it and stores its new encoding. Decoding it again
at the next batch is waste while the table still holds that very encoding: ``take`` hands
the decoded value back then (and only then: a value the table no longer holds, after a
rebalance or another writer, is decoded afresh). A taken value is out of the cache until
it is ``keep``-ed again, so a batch that fails half-way leaves nothing half-changed
behind. The least recently kept values go first past ``limit``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["KeptDecoded"]

V = TypeVar("V")
S = TypeVar("S")


class KeptDecoded(Generic[V]):
    def __init__(self, limit: int) -> None:
        self._limit = limit
        # An OrderedDict, not a dict: evicting a dict's oldest key (``next(iter(d))``)
        # scans past every slot freed at its front, and ``take`` frees one per hit.
        self._items: OrderedDict[str, tuple[object, V]] = OrderedDict()

    def take(self, key: str, stored: object) -> V | None:
        """The value decoded from (or encoded to) ``stored``, or ``None``; removed."""
        kept = self._items.pop(key, None)
        return kept[1] if kept is not None and stored is not None and kept[0] == stored else None

    def take_or_decode(self, key: str, stored: S, decode: Callable[[S], V]) -> V:
        """``take``, or ``decode(stored)`` when no value decoded from ``stored`` is kept."""
        kept = self.take(key, stored)
        return kept if kept is not None else decode(stored)

    def keep(self, key: str, stored: object, value: V) -> None:
        self._items[key] = (stored, value)
        self._items.move_to_end(key)
        if len(self._items) > self._limit:
            self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
