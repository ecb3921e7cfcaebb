"""Every test runs the code as the processes run it: compiled modules must match their
sources (``vhc_common.native``); ``make test`` builds them first."""

from __future__ import annotations

import pytest

from vhc_common import native


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        native.check()
    except native.NativeBuildError as exc:
        raise pytest.UsageError(str(exc)) from None
