"""Engines (one per URL, cached) and transactional sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

import orjson
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from verticals.core.config import get_settings
from verticals.core.db.sqlite import WalCheckpointer, create_sqlite_engine, database_file

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def json_text(value: object) -> str:
    """JSON columns' serializer: orjson (several times faster than ``json.dumps`` on the
    scoring path's state, response and audit columns). Non-finite floats become null, which
    is valid JSON; ``json.dumps`` would write ``NaN``, which is not."""
    return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()


_engines: dict[str, Engine] = {}
_checkpointers: list[WalCheckpointer] = []


def _engine_for(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            engine = create_sqlite_engine(url, json_serializer=json_text)
            path = database_file(engine)
            if path is not None:
                _checkpointers.append(WalCheckpointer(path).start())
        else:
            engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                json_serializer=json_text,
            )
        _engines[url] = engine
    return engine


def get_engine(url: str | None = None) -> Engine:
    if url is None:
        settings = get_settings()
        url = settings.resolved_database_url
        if url not in _engines:  # the folders once per engine, not two mkdirs per transaction
            settings.ensure_home()
    return _engine_for(url)


def reset_engines() -> None:
    for checkpointer in _checkpointers:
        checkpointer.stop()
    _checkpointers.clear()
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _sessionmaker_for.cache_clear()


@lru_cache(maxsize=16)
def _sessionmaker_for(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    factory = _sessionmaker_for(engine or get_engine())
    with factory() as session, session.begin():
        yield session


T = TypeVar("T")


def retrying(
    work: Callable[[], T],
    *,
    attempts: int = 3,
    on: tuple[type[BaseException], ...] = (IntegrityError,),
) -> T:
    """Run ``work`` (one whole transaction) again when it fails with one of ``on``: a concurrent
    writer committed the same row first (the retry then finds it), or the database broke a lock
    wait. The last failure is raised."""
    for attempt in range(attempts):
        try:
            return work()
        except on:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
