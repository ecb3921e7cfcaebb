"""What every deployable's settings share."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

__all__ = ["Environment", "development_secret", "settings_errors"]

#: ``production`` (the default: fail safe) refuses development secrets; ``development``
#: (what ``make up`` and the tests set) accepts them.
Environment = Literal["development", "production"]

#: Prefixes of the values ``make up`` makes, and words of placeholder values in examples.
_DEVELOPMENT_PREFIXES = ("dev-", "test-", "it-", "bench-", "demo-")
_PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "example", "secret", "password",
                      "placeholder", "replace-me", "xxxxxxxx")


def development_secret(value: str) -> bool:
    """Whether ``value`` looks like a development or placeholder secret (never for
    production): made by ``make up`` (``dev-...``), by tests, or copied from an example."""
    folded = value.strip().lower()
    return (folded.startswith(_DEVELOPMENT_PREFIXES)
            or any(word in folded for word in _PLACEHOLDER_WORDS))


def settings_errors(exc: ValidationError, prefix: str = "VHC_") -> str:
    """One line per invalid setting, without the value given: values include secrets
    (pydantic's own message repeats every input)."""
    return "\n".join(f"  {prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                     for e in exc.errors(include_input=False, include_url=False))
