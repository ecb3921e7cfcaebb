"""Compile the detectors and the worker's batch body with mypyc, in place.

``python -m deploy.compile``          build what is missing or older than its source
``python -m deploy.compile --check``  say whether the build matches the sources (exit 1 if not)
``python -m deploy.compile --clean``  delete the compiled modules: everything runs interpreted

The modules are ``vhc_common.native.COMPILED``; each extension sits beside its source and
is imported in its place, so every process, test and benchmark runs the compiled code.
Needs a C compiler and Python's headers. A build takes about two minutes on two cores; its
output goes to ``build/native.log``, whose tail is printed if it fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from vhc_common import native

LOG = native.ROOT / "build" / "native.log"
BUILD_DIR = native.ROOT / "build" / "mypyc"

# Run in a child process from the checkout: mypyc type-checks the modules with the
# project's mypy settings (pyproject.toml) and setuptools builds the extensions in place.
_BUILD = """
import os, sys
from mypyc.build import mypycify
from setuptools import setup
paths = sys.argv[1:]
setup(name="vhc-native", ext_modules=mypycify(paths, opt_level="3", group_name="vhc_native",
                                              target_dir=os.environ["VHC_NATIVE_BUILD_DIR"]),
      script_args=["build_ext", "--inplace", "--parallel", str(os.cpu_count() or 1)])
"""


def build() -> None:
    paths = [str(native.source_of(m).relative_to(native.ROOT)) for m in native.COMPILED]
    LOG.parent.mkdir(parents=True, exist_ok=True)
    native.remove_extensions()  # a half-built set must not be imported
    print(f"compiling {len(paths)} modules with mypyc (about 2 minutes; log: {LOG})",
          flush=True)
    started = time.monotonic()
    with LOG.open("w") as log:
        done = subprocess.run([sys.executable, "-c", _BUILD, *paths], cwd=native.ROOT,
                              stdout=log, stderr=subprocess.STDOUT, check=False,
                              env={**os.environ, "VHC_NATIVE_BUILD_DIR": str(BUILD_DIR)})
    if done.returncode != 0:
        tail = LOG.read_text().splitlines()[-40:]
        native.remove_extensions()
        sys.exit("mypyc build failed (exit {}); the end of {}:\n{}".format(
            done.returncode, LOG, "\n".join(tail)))
    native.MANIFEST.write_text(json.dumps(native.manifest_of(native.COMPILED), indent=1))
    missing = [m for m in native.COMPILED if m not in native.built()]
    if missing:
        sys.exit(f"mypyc build left no extension for: {', '.join(missing)} (log: {LOG})")
    print(f"compiled {len(paths)} modules in {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if the build is stale")
    group.add_argument("--clean", action="store_true", help="delete the compiled modules")
    args = parser.parse_args()
    if args.clean:
        gone = native.remove_extensions()
        print(f"removed {len(gone)} compiled files; everything runs interpreted")
        return
    up_to_date = len(native.built()) == len(native.COMPILED) and not native.stale()
    if args.check:
        state = "up to date" if up_to_date else (
            "stale: " + ", ".join(native.stale()) if native.built() else "not built")
        print(f"compiled modules: {state}")
        sys.exit(0 if up_to_date else 1)
    if up_to_date:
        print("compiled modules up to date")
        return
    build()


if __name__ == "__main__":
    main()
