"""``BatchedTable.get`` reads the memory store's dict instead of faust's path: the same
answers as faust's ``Mapping.get``, for written, deleted, restored and missing keys."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import faust

from streams.changelog import BatchedTable


def make_table(**kwargs: Any) -> Any:
    app = faust.App(f"reads-{uuid.uuid4().hex[:8]}", broker="kafka://localhost:1",
                    store="memory://", Table=BatchedTable)
    return app.Table("state", key_type=str, value_type=str, partitions=4,
                     use_partitioner=True, **kwargs)


def restored(key: str, value: str | None) -> Any:
    """A changelog record as recovery hands it to the store."""
    return SimpleNamespace(key=key, value=value,
                           message=SimpleNamespace(value=value, partition=0))


def test_reads_answer_as_fausts_path() -> None:
    table = make_table()
    table["a"] = "1"
    table["b"] = "2"
    del table["b"]
    table.data.apply_changelog_batch([restored("c", "3"), restored("a", None)],
                                     to_key=lambda k: k, to_value=lambda v: v)
    table["d"] = "4"
    for key in ("a", "b", "c", "d", "missing"):
        assert table.get(key) == Mapping.get(table, key)
        assert table.get(key, "default") == Mapping.get(table, key, "default")
    assert [table.get(k) for k in "abcd"] == [None, None, "3", "4"]
    assert table._reads.__self__ is table.data.data  # the fast path was taken


def test_a_table_with_a_default_keeps_fausts_path() -> None:
    table = make_table(default=lambda: "made")
    assert table.get("missing") == "made" == Mapping.get(table, "missing")
