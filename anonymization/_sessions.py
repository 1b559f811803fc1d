"""Two sessions on one database, for the gate's independent scans."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pymysql

from phoenix.db import AdminAccess, connect

T = TypeVar("T")
R = TypeVar("R")


class _Sessions:
    """Two sessions on the database; `map` runs fn(session, item) for the items on both at
    once (the gate's scans are independent, and the server has a core for each)."""

    def __init__(
        self,
        admin: AdminAccess,
        database: str,
        setup: Callable[[pymysql.Connection], None] = lambda c: None,
        size: int = 2,
    ) -> None:
        self.admin, self.database, self.setup, self.size = admin, database, setup, size
        self._local = threading.local()
        self._conns: list[pymysql.Connection] = []
        self._lock = threading.Lock()

    def _session(self) -> pymysql.Connection:
        if not hasattr(self._local, "conn"):
            conn = connect(self.admin, self.database)
            with self._lock:
                self._conns.append(conn)
            self.setup(conn)
            self._local.conn = conn
        return self._local.conn

    def map(self, fn: Callable[[pymysql.Connection, T], R], items: list[T]) -> list[R]:
        with ThreadPoolExecutor(self.size) as pool:
            return list(pool.map(lambda item: fn(self._session(), item), items))

    def __enter__(self) -> _Sessions:
        return self

    def __exit__(self, *exc) -> None:
        for conn in self._conns:
            conn.close()
