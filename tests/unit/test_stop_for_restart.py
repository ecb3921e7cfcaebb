"""``streams.faust_fixes.stop_for_restart``: the worker stops as SIGTERM stops it, and
exits with the code asked for; a stop that hangs ends the process anyway. Each case runs
in a process of its own (it signals and ends its process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

PROGRAM = textwrap.dedent("""
    import asyncio, logging, signal, sys
    from streams import faust_fixes

    faust_fixes.STOP_FOR_RESTART_S = 1.0

    async def main(graceful: bool) -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        # What faust's worker does on SIGTERM (leave the group, stop), or a stop that hangs.
        loop.add_signal_handler(signal.SIGTERM, stopped.set if graceful else lambda: None)
        faust_fixes.stop_for_restart(logging.getLogger("test"), 75)
        faust_fixes.stop_for_restart(logging.getLogger("test"), 75)  # once is enough
        await stopped.wait()
        print("stopped", flush=True)

    try:
        asyncio.run(main(sys.argv[1] == "graceful"))
    finally:
        if (code := faust_fixes.exit_code()) is not None:  # as streams.main does
            sys.exit(code)
""")


@pytest.mark.parametrize("how", ["graceful", "hangs"])
def test_the_worker_stops_to_be_restarted_with_its_exit_code(how: str) -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PROGRAM, how], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 75, done.stderr
    if how == "graceful":
        assert done.stdout == "stopped\n"
    else:  # ended without its stop, after STOP_FOR_RESTART_S
        assert done.stdout == "" and time.monotonic() - started >= 1.0
