"""SQLite engines: pragmas, background WAL checkpoints, the cross-process writer lock, the
JSON column serializer."""

from __future__ import annotations

import fcntl
import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from verticals.core.db import get_engine, reset_engines
from verticals.core.db.session import json_text
from verticals.core.db.sqlite import (
    SAFETY_NET_PAGES,
    WalCheckpointer,
    database_file,
    writer_lock_file,
)


def _wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _checkpointer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sqlite-checkpoint:")]


def _wal_file(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def test_sqlite_connections_use_wal_and_defer_checkpoints_to_the_background(tmp_path: Path):
    engine = get_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == SAFETY_NET_PAGES
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert database_file(engine) == tmp_path / "a.db"
        assert any(t.is_alive() for t in _checkpointer_threads())
    finally:
        reset_engines()
    assert not any(t.is_alive() for t in _checkpointer_threads())


def test_in_memory_databases_get_no_checkpointer():
    engine = get_engine("sqlite://")
    try:
        assert database_file(engine) is None
        assert not _checkpointer_threads()
    finally:
        reset_engines()


def test_background_checkpointer_copies_the_wal_into_the_database_file(tmp_path: Path):
    db = tmp_path / "b.db"
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")  # only the background thread checkpoints
        writer.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        writer.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 200,)] * 2000)
        payload = 2000 * 200
        assert _wal_file(db).stat().st_size > payload
        assert db.stat().st_size < payload  # the rows are in the log only

        checkpointer = WalCheckpointer(db, interval_s=0.05).start()
        try:
            # the writer stays open (closing the last connection would checkpoint by itself)
            assert _wait_for(lambda: db.stat().st_size > payload)
            assert checkpointer.checkpoints >= 1
        finally:
            checkpointer.stop()
        assert not checkpointer._thread.is_alive()
        assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 2000
    finally:
        writer.close()


def test_checkpointer_never_creates_a_missing_database(tmp_path: Path):
    missing = tmp_path / "gone.db"
    checkpointer = WalCheckpointer(missing, interval_s=0.02).start()
    try:
        time.sleep(0.2)
    finally:
        checkpointer.stop()
    assert not missing.exists()
    assert checkpointer.checkpoints == 0


def test_checkpointer_rejects_a_non_positive_interval(tmp_path: Path):
    with pytest.raises(ValueError, match="interval_s"):
        WalCheckpointer(tmp_path / "x.db", interval_s=0)


def test_engines_checkpoint_in_the_background_below_the_automatic_threshold(tmp_path: Path):
    """Writes through the engine stay far below the commit-time checkpoint threshold; the
    database file still receives them while the pool keeps its connection open."""
    db = tmp_path / "c.db"
    engine = get_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
        for _ in range(10):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "y" * 400}] * 200)
        written = 10 * 200 * 400
        assert _wait_for(lambda: db.stat().st_size > written)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2000
    finally:
        reset_engines()


def _lock_is_free(lock: Path) -> bool:
    """Whether an exclusive flock on ``lock`` can be taken right now (then released)."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases it, if taken
    return True


def test_a_transaction_holds_the_writer_lock_until_commit_or_rollback(tmp_path: Path):
    db = tmp_path / "w.db"
    engine = get_engine(f"sqlite:///{db}")
    lock = writer_lock_file(db.resolve())
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
            assert not _lock_is_free(lock)
        assert _lock_is_free(lock)
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            assert not _lock_is_free(lock)
            raise RuntimeError("roll back")
        assert _lock_is_free(lock)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        reset_engines()


def test_a_writer_in_another_thread_waits_for_the_holder_and_then_proceeds(tmp_path: Path):
    engine = get_engine(f"sqlite:///{tmp_path / 'q.db'}")
    order: list[str] = []
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (who TEXT)"))

        def second() -> None:
            with engine.begin() as conn:
                order.append("second")
                conn.execute(text("INSERT INTO t VALUES ('second')"))

        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES ('first')"))
            waiter = threading.Thread(target=second)
            waiter.start()
            time.sleep(0.2)
            assert not order  # still queued behind this transaction
            order.append("first commits")
        waiter.join(10)
        assert order == ["first commits", "second"]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        reset_engines()


def test_a_second_write_transaction_in_the_same_thread_fails_instead_of_waiting_forever(
    tmp_path: Path,
):
    engine = get_engine(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with engine.begin():
            started = time.monotonic()
            with pytest.raises(OperationalError, match="already holds the write lock"):
                with engine.begin():
                    pass
            assert time.monotonic() - started < 1.0
        with engine.begin() as conn:  # the lock was released: the thread writes again
            conn.execute(text("CREATE TABLE t (k INTEGER)"))
    finally:
        reset_engines()


_INCREMENT = """
import sys
from sqlalchemy import text
from verticals.core.db import get_engine
engine = get_engine(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with engine.begin() as conn:
        value = conn.execute(text("SELECT n FROM counter")).scalar()
        conn.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
"""


def test_writers_in_several_processes_lose_no_update(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = get_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE counter (n INTEGER)"))
            conn.execute(text("INSERT INTO counter VALUES (0)"))
        processes = [
            subprocess.Popen([sys.executable, "-c", _INCREMENT, url, "100"]) for _ in range(3)
        ]
        assert [p.wait(120) for p in processes] == [0, 0, 0]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT n FROM counter")).scalar() == 300
    finally:
        reset_engines()


def test_json_text_writes_valid_json_for_what_json_dumps_handles_loosely():
    assert json_text({"a": 1, "b": [1.5, None]}) == '{"a":1,"b":[1.5,null]}'
    assert json_text({7: "int key"}) == '{"7":"int key"}'
    assert json_text([math.nan, math.inf]) == "[null,null]"  # json.dumps would write NaN
    assert json_text({"x": np.float64(0.25), "v": np.arange(3)}) == '{"x":0.25,"v":[0,1,2]}'
