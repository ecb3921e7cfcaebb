"""``vhc_common.redis_wire``: hiredis packs the bytes redis-py packs, for any arguments the
project sends; what hiredis would pack otherwise (or not at all) goes redis-py's way."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from vhc_common import redis_wire

ARG = st.one_of(st.text(), st.binary(), st.integers(-(2**80), 2**80),
                st.floats(allow_nan=False))


def both(**kwargs: Any) -> tuple[Any, Any]:
    return Connection(**kwargs), redis_wire.fast_class(Connection)(**kwargs)


@given(st.sampled_from(["SET", "EVALSHA", b"HSET", "CONFIG GET", b"CLIENT SETNAME"]),
       st.lists(ARG, max_size=40))
def test_the_bytes_are_redis_pys(command: str | bytes, args: list[Any]) -> None:
    plain, fast = both()
    assert fast.pack_command(command, *args) == [b"".join(plain.pack_command(command, *args))]
    commands = [(command, *args), ("SET", "k", b"v", "PX", 5)]
    assert b"".join(fast.pack_commands(commands)) == b"".join(plain.pack_commands(commands))


def test_a_large_call_is_one_piece_with_redis_pys_bytes() -> None:
    plain, fast = both()
    args = ("EVALSHA", "a" * 40, 2500, *(f"vhc:visits:person:{i:032x}" for i in range(2500)),
            86_400_000, b"x" * 200_000)
    assert fast.pack_command(*args) == [b"".join(plain.pack_command(*args))]


@pytest.mark.parametrize("bad", [True, None, object()])
def test_what_redis_py_refuses_is_refused_alike(bad: Any) -> None:
    plain, fast = both()
    with pytest.raises(DataError):
        plain.pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        fast.pack_command("SET", "k", bad)


def test_memoryviews_and_other_encodings_go_redis_pys_way() -> None:
    plain, fast = both()
    view = memoryview(b"v" * 10)
    assert b"".join(fast.pack_command("SET", "k", view)) == \
        b"".join(plain.pack_command("SET", "k", view))
    plain, fast = both(encoding="latin-1")
    assert fast.pack_command("SET", "k", "é") == plain.pack_command("SET", "k", "é")
    assert b"\xe9" in b"".join(fast.pack_command("SET", "k", "é"))


@pytest.mark.parametrize("url,kind", [("redis://localhost:1/0", Connection),
                                      ("rediss://localhost:1/0", SSLConnection),
                                      ("unix:///tmp/none.sock", UnixDomainSocketConnection)])
def test_a_client_keeps_the_connection_class_its_url_picks(url: str, kind: type) -> None:
    pool = redis_wire.client(url).connection_pool
    assert issubclass(pool.connection_class, kind)
    assert issubclass(pool.connection_class, redis_wire.FastPacking)
    assert redis_wire.fast_class(kind) is pool.connection_class
