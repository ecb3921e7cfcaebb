"""What every deployable's settings share."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["settings_errors"]


def settings_errors(exc: ValidationError, prefix: str = "VHC_") -> str:
    """One line per invalid setting, without the value given: values include secrets
    (pydantic's own message repeats every input)."""
    return "\n".join(f"  {prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                     for e in exc.errors(include_input=False, include_url=False))
