"""Compiled modules (vhc_common.native, deploy.compile): a stale build is refused, the
built one is what is imported."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
from pathlib import Path

import pytest

from deploy import compile as compile_cli
from vhc_common import native

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout of one package with two modules listed as compiled."""
    (tmp_path / "pkg").mkdir()
    for name in ("__init__", "a", "b"):
        (tmp_path / "pkg" / f"{name}.py").write_text(f"NAME = {name!r}\n")
    monkeypatch.setattr(native, "ROOT", tmp_path)
    monkeypatch.setattr(native, "MANIFEST", tmp_path / "build" / "native.json")
    monkeypatch.setattr(native, "COMPILED", ("pkg", "pkg.a", "pkg.b"))
    return tmp_path


def build(root: Path, modules: tuple[str, ...] = ("pkg", "pkg.a", "pkg.b")) -> None:
    """What a build leaves: an extension beside each source and the manifest."""
    for m in modules:
        native.source_of(m).with_suffix(SUFFIX).write_bytes(b"")
    native.MANIFEST.parent.mkdir(exist_ok=True)
    native.MANIFEST.write_text(json.dumps(native.manifest_of(modules)))


def test_sources_alone_run_interpreted(tree: Path) -> None:
    assert native.built() == [] and native.stale() == []
    native.check()


def test_a_build_matching_its_sources_passes(tree: Path) -> None:
    build(tree)
    assert native.built() == ["pkg", "pkg.a", "pkg.b"]
    assert native.stale() == []
    native.check()


def test_a_source_edited_after_the_build_is_refused_by_name(tree: Path) -> None:
    build(tree)
    (tree / "pkg" / "b.py").write_text("NAME = 'edited'\n")
    assert native.stale() == ["pkg.b"]
    with pytest.raises(native.NativeBuildError, match=r"pkg\.b\. Build them again with `make"):
        native.check()
    with pytest.raises(SystemExit, match=r"^vhc-worker: compiled modules do not match"):
        native.exit_if_stale("vhc-worker")


def test_extensions_without_a_manifest_are_all_stale(tree: Path) -> None:
    build(tree)
    native.MANIFEST.unlink()
    assert native.stale() == ["pkg", "pkg.a", "pkg.b"]


def test_a_build_missing_a_listed_module_is_stale(tree: Path) -> None:
    # callers were compiled against every listed module: one left interpreted is refused
    build(tree, ("pkg", "pkg.a"))
    assert native.stale() == ["pkg.b"]


def test_clean_removes_every_extension_and_the_manifest(tree: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        ) -> None:
    build(tree)
    (tree / f"vhc_native__mypyc{SUFFIX}").write_bytes(b"")
    monkeypatch.setattr("sys.argv", ["compile", "--clean"])
    compile_cli.main()
    assert "removed 4 compiled files" in capsys.readouterr().out
    assert not list(tree.rglob(f"*{SUFFIX}")) and not native.MANIFEST.exists()
    assert (tree / "pkg" / "a.py").exists()


@pytest.mark.parametrize(("edit", "code", "says"), [
    (False, 0, "up to date"), (True, 1, "stale: pkg.a")])
def test_check_says_whether_the_build_matches(tree: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch, edit: bool,
                                              code: int, says: str) -> None:
    build(tree)
    if edit:
        (tree / "pkg" / "a.py").write_text("NAME = 'edited'\n")
    monkeypatch.setattr("sys.argv", ["compile", "--check"])
    with pytest.raises(SystemExit) as stopped:
        compile_cli.main()
    assert stopped.value.code == code
    assert says in capsys.readouterr().out


def test_the_listed_modules_exist() -> None:
    for module in native.COMPILED:
        assert native.source_of(module).is_file(), module


def test_built_modules_are_the_ones_imported() -> None:
    """Where this checkout is built (``make test`` builds it), every listed module is
    imported from its extension, not from its source."""
    present = native.built()
    if not present and not os.environ.get("CI"):  # CI (.ci/run) always runs compiled
        pytest.skip("running interpreted (python -m deploy.compile --clean)")
    assert present == list(native.COMPILED)
    for module in present:
        loaded = importlib.import_module(module)
        assert str(loaded.__file__).endswith(SUFFIX), module
