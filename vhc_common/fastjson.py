"""Compact JSON text for the worker's state values, through ``orjson``.

Every batch encodes the state of each checkpoint it touched (a few kilobytes each: the
hour series, every detector's state, the outbox), and at 2,000 checkpoints that is one
state per two or three records: ``json.dumps`` was a tenth of the pipeline's time. The
text is what ``json.dumps(obj, separators=(",", ":"))`` gives, except that non-ASCII
characters are written as UTF-8 rather than escaped and some floats are spelt otherwise
(``0.00002`` for ``2e-05``); either reads back the same, so states written before are read
as they were. JSON has no NaN or infinity: orjson writes them as
``null`` where ``json`` wrote ``NaN``, so only finite floats belong in what is encoded here
(the states' means, sizes and dispersions are).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps", "dumps_bytes", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> str:
    """``obj`` as compact JSON text (non-string keys as strings, as ``json`` does)."""
    return dumps_bytes(obj).decode()


def dumps_bytes(obj: Any) -> bytes:
    """``dumps`` as UTF-8 bytes, for a record value (no round trip through ``str``)."""
    return orjson.dumps(obj, option=_OPTIONS)


def loads(data: str | bytes) -> Any:
    """Raises ``orjson.JSONDecodeError``, a ``json.JSONDecodeError`` (so a ``ValueError``)."""
    return orjson.loads(data)
