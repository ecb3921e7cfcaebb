"""Errors of the detectors package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DetectorError", "StateDecodeError", "decoding"]


class DetectorError(Exception):
    """Root of every error raised by ``detectors``."""


class StateDecodeError(DetectorError):
    """Stored detector state could not be decoded (corrupt or of another version)."""


#: What malformed encoded data raises from json, int(), indexing and unpacking.
MALFORMED = (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError,
             ArithmeticError)  # int(Infinity) is an OverflowError


@contextmanager
def decoding(what: str) -> Iterator[None]:
    """Any malformation met while decoding ``what`` becomes one ``StateDecodeError``
    naming it (the data itself is not repeated: state holds pseudonymous keys)."""
    try:
        yield
    except StateDecodeError:
        raise
    except MALFORMED as exc:
        raise StateDecodeError(f"{what} cannot be decoded: {type(exc).__name__}") from exc
