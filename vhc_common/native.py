"""The modules that run compiled, and whether their build matches their sources.

The detectors and the worker's batch body are typed, framework-free Python; mypyc
compiles them to C extensions (``python -m deploy.compile``, run by ``make deps``), which
sit beside their sources and are imported in their place. A source edited after its
build would then not run at all: the extension would. :func:`check` refuses that, naming
the modules, at the start of every process and of the test session. With no extension
beside a source (``python -m deploy.compile --clean``) everything runs interpreted, and
that is checked as it is.

The build writes a manifest (:data:`MANIFEST`): each compiled module's source digest.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import sys
from pathlib import Path

__all__ = ["COMPILED", "MANIFEST", "ROOT", "NativeBuildError", "built", "check", "digest",
           "exit_if_stale", "manifest_of", "remove_extensions", "source_of", "stale"]

#: the checkout (or the image's /app) holding the packages
ROOT = Path(__file__).resolve().parent.parent
#: what the last build compiled: ``{"modules": {module: sha256 of its source}}``
MANIFEST = ROOT / "build" / "native.json"

#: compiled: all of ``detectors`` and the worker's batch body with what it calls per record
COMPILED: tuple[str, ...] = (
    "detectors",
    "detectors.aberration",
    "detectors.alerts",
    "detectors.base",
    "detectors.cluster",
    "detectors.counts",
    "detectors.declaration_alerts",
    "detectors.errors",
    "detectors.flags",
    "detectors.naming",
    "detectors.outbreak",
    "detectors.schedule",
    "detectors.series",
    "detectors.tails",
    "detectors.underuse",
    "detectors.volume",
    "streams.counting",
    "streams.kept",
    "streams.offsets",
    "streams.pipeline",
    "streams.wards",
    "vhc_common.fastjson",
    "vhc_common.partitioning",
    "vhc_common.timebase",
)


class NativeBuildError(RuntimeError):
    """A compiled module does not match its source."""


def source_of(module: str) -> Path:
    """The ``.py`` file of a module of :data:`COMPILED`."""
    parts = module.split(".")
    base = ROOT.joinpath(*parts)
    return base / "__init__.py" if len(parts) == 1 else base.with_suffix(".py")


def _extensions_of(module: str) -> list[Path]:
    source = source_of(module)
    return [source.with_suffix(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if source.with_suffix(suffix).exists()]


def built() -> list[str]:
    """The modules of :data:`COMPILED` with an extension beside their source."""
    return [m for m in COMPILED if _extensions_of(m)]


def digest(module: str) -> str:
    return hashlib.sha256(source_of(module).read_bytes()).hexdigest()


def manifest_of(modules: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    return {"modules": {m: digest(m) for m in modules}}


def stale() -> list[str]:
    """Modules whose extension was not built from their present source (all built ones
    when the manifest is missing), and modules of :data:`COMPILED` left out of a build
    that compiled others (their callers were compiled against them)."""
    present = built()
    if not present:
        return []
    try:
        recorded = dict(json.loads(MANIFEST.read_text())["modules"])
    except (OSError, ValueError, KeyError, TypeError):
        return present
    return [m for m in COMPILED if recorded.get(m) != digest(m)
            or m not in present]


def check() -> None:
    """Raise :class:`NativeBuildError` when a compiled module is stale (see module doc)."""
    if out_of_date := stale():
        raise NativeBuildError(
            "compiled modules do not match their sources: " + ", ".join(out_of_date)
            + ". Build them again with `make native` (python -m deploy.compile), or run "
            "interpreted after `python -m deploy.compile --clean`.")


def exit_if_stale(program: str) -> None:
    """A process's first step: stop with the reason when :func:`check` fails."""
    try:
        check()
    except NativeBuildError as exc:
        sys.exit(f"{program}: {exc}")


def remove_extensions() -> list[Path]:
    """Delete every compiled module's extension (and the build's shared library)."""
    gone = [p for m in COMPILED for p in _extensions_of(m)]
    gone += [p for p in ROOT.glob("vhc_native__mypyc.*") if p.is_file()]
    for path in gone:
        path.unlink()
    MANIFEST.unlink(missing_ok=True)
    return gone
