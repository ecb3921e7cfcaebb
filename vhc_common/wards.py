"""Official Vietnamese ward codes (two-level divisions since 2025), from ``vietnam-provinces``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vietnam_provinces import Province, Ward, WardCode

__all__ = ["UnknownWardError", "WardInfo", "lookup_ward"]


class UnknownWardError(ValueError):
    """The code is not an official ward/commune code."""


@dataclass(frozen=True)
class WardInfo:
    code: str
    name: str
    province_code: str
    province_name: str


@cache
def lookup_ward(code: str) -> WardInfo:
    """The ward for a 5-digit code such as ``"08749"`` (Phường Xuân Hòa)."""
    if len(code) != 5 or not (code.isascii() and code.isdigit()):
        raise UnknownWardError(f"ward code must be 5 digits, got {code!r}")
    try:
        ward = Ward.from_code(WardCode(int(code)))
    except ValueError as exc:
        raise UnknownWardError(f"{code} is not an official ward code") from exc
    province = Province.from_code(ward.province_code)
    return WardInfo(code=code, name=ward.name, province_code=f"{int(ward.province_code):02d}",
                    province_name=province.name)
