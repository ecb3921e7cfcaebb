"""Errors of the detectors package."""

from __future__ import annotations

__all__ = ["DetectorError", "StateDecodeError"]


class DetectorError(Exception):
    """Root of every error raised by ``detectors``."""


class StateDecodeError(DetectorError):
    """Stored detector state could not be decoded (corrupt or of another version)."""
