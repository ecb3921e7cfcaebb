"""Errors of the stream worker."""

from __future__ import annotations

__all__ = ["BadRecordError", "StreamsError"]


class StreamsError(Exception):
    """Root of every error raised by ``streams``."""


class BadRecordError(StreamsError):
    """A record on an input topic cannot be decoded; it goes to the dead-letter topic."""
