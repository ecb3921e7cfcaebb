"""``vhc_common.runtime.tune_gc``: what every service process starts with."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from vhc_common.runtime import GC_THRESHOLDS


def _run(code: str) -> str:
    # A fresh interpreter: the collector's settings are process-wide.
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=True)
    return proc.stdout.strip()


def test_tune_gc_freezes_what_exists_and_raises_the_thresholds() -> None:
    out = _run("""
        import gc
        from vhc_common.runtime import tune_gc
        before = gc.get_threshold()
        tune_gc()
        print(before, gc.get_threshold(), gc.get_freeze_count() > 1000, gc.isenabled())
    """)
    assert out == f"(700, 10, 10) {GC_THRESHOLDS} True True"


def test_cycles_are_still_collected_after_tune_gc() -> None:
    out = _run("""
        import gc, weakref
        from vhc_common.runtime import tune_gc
        tune_gc()
        class Node:
            pass
        refs = []
        for _ in range(200_000):  # allocations enough to pass the youngest threshold
            a, b = Node(), Node()
            a.other, b.other = b, a  # a cycle: reference counting alone never frees it
            refs.append(weakref.ref(a))
            del a, b
        print(sum(r() is None for r in refs) > 150_000)
    """)
    assert out == "True"
