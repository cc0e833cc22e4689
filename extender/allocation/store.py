"""The allocations store: SQLite in the data directory (`SITE_EXTENDER_DATA_DIR`).

A `PlacementSource`: what the allocations hold uses up stock in /filter and /prioritize like placed
pods do. Durable (WAL, `synchronous=FULL`): an allocation answered 201 survives a crash or a restart.
Writers serialise on `BEGIN IMMEDIATE`, which SQLite holds across processes, so the check of what
is free and the insert of what is taken form one step even when the `allocate` command writes next
to a running server. Readers notice other connections' commits through `PRAGMA data_version`.

The database file is created on the first allocation, not before: a server that never allocates
leaves no trace in its working directory.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from extender.domain.model import Placement
from extender.errors import PlacementsUnavailable

log = logging.getLogger(__name__)

DB_FILE = "allocations.db"
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, SCHEMA_VERSION)
"""Schema 1 (no labels) is read as it is, and upgraded by the first write."""
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS allocations (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    answer TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS placements (
    key TEXT PRIMARY KEY,
    allocation_id TEXT NOT NULL REFERENCES allocations(id) ON DELETE CASCADE,
    site_id TEXT NOT NULL,
    flavor_id TEXT NOT NULL,
    vcpus INTEGER NOT NULL,
    ram INTEGER NOT NULL,
    need_eip INTEGER NOT NULL,
    storage TEXT NOT NULL,
    grp TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS placements_by_allocation ON placements(allocation_id);
"""


class StoreUnavailable(PlacementsUnavailable):
    """The store cannot be used: the data directory cannot hold it (missing and not creatable, or not
    writable), or the database cannot be read (corrupt, unreadable, another schema). Reads fail
    closed with it: /filter, /readyz and the API say why instead of counting no allocations."""


@dataclass(frozen=True, slots=True)
class StoredAllocation:
    id: str
    created_at: float
    answer: dict[str, Any]


def writable_problem(directory: Path) -> str | None:
    """Why `directory` cannot hold the store, or None when it can (it is created if missing)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the data directory {directory}: {exc.strerror or exc}"
    if not directory.is_dir():
        return f"the data directory {directory} is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"the data directory {directory} is not writable by this process (uid {os.getuid()})"
    return None


def writable_problem_if_used(directory: Path) -> str | None:
    """Like `writable_problem` without creating anything: the nearest existing ancestor must let
    this process create the directory (checked at start, so a bad data dir is said at once)."""
    target = Path(directory).absolute()
    path = target
    while not path.exists():
        if path.parent == path:
            return f"no part of the data directory {directory} exists"
        path = path.parent
    if not path.is_dir():
        return f"{path} (on the way to the data directory {directory}) is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        if path == target:
            return f"the data directory {directory} is not writable by this process (uid {os.getuid()})"
        return f"the data directory {directory} does not exist and {path} is not writable by this process (uid {os.getuid()})"
    return None


class AllocationStore:
    """Allocations and the placements they hold, in `<data dir>/allocations.db`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._file_id: tuple[int, int, int] | None = None
        self._version = 0
        self._placements: tuple[Placement, ...] = ()

    # --- connections ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        if self._writer is None:
            problem = writable_problem(self.directory)
            if problem:
                raise StoreUnavailable(f"allocation store unavailable: {problem}; set SITE_EXTENDER_DATA_DIR to a writable directory")
            try:
                conn = self._connect()
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                found = conn.execute("PRAGMA user_version").fetchone()[0]
                if found == 1:
                    # Schema 1 had no labels (resource_group.labels): its allocations carry none.
                    conn.execute("ALTER TABLE placements ADD COLUMN labels TEXT NOT NULL DEFAULT '{}'")
                    found = 0
                if found == 0:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif found != SCHEMA_VERSION:
                    raise StoreUnavailable(f"allocation store {self.path} has schema {found}, this version reads {SCHEMA_VERSION}")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"allocation store {self.path} cannot be opened: {exc}") from exc
            self._writer = conn
        return self._writer

    def shutdown(self) -> None:
        """Close the connections (the next use opens them again)."""
        with self._write_lock, self._read_lock:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    # closing(): tests/k8s_calls.py reads any `.close` attribute as a Kubernetes call.
                    with closing(conn):
                        pass
            self._writer = self._reader = None
            self._data_version = None

    # --- PlacementSource -----------------------------------------------------------------------

    def placements(self) -> tuple[int, Sequence[Placement]]:
        """(version, placements of every allocation); re-read only when the database changed.
        Raises `StoreUnavailable` when the database is there but cannot be read."""
        with self._read_lock:
            reader = self._open_reader()
            if reader is None:
                if self._placements:  # the file is gone: so are its allocations
                    self._placements, self._version = (), self._version + 1
                return self._version, self._placements
            try:
                data_version = reader.execute("PRAGMA data_version").fetchone()[0]
                if data_version != self._data_version:
                    self._placements = _read_placements(reader) if _has_schema(reader) else ()
                    self._data_version = data_version
                    self._version += 1
            except (sqlite3.Error, ValueError) as exc:  # ValueError: a row's JSON is not JSON
                raise self._unreadable(exc) from exc
            return self._version, self._placements

    def _open_reader(self) -> sqlite3.Connection | None:
        """The reading connection (under `_read_lock`), None while there is no database yet."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        except OSError as exc:
            raise StoreUnavailable(f"allocation store {self.path} cannot be read: {exc.strerror or exc}") from exc
        # SQLite sees other connections' commits (`data_version`), not a file replaced or overwritten
        # under it: then the connection is opened again, and the file read anew.
        file_id = None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._reader is not None and file_id == self._file_id:
            return self._reader
        if self._reader is not None:
            with closing(self._reader):
                pass
            self._reader, self._data_version = None, None
        self._file_id = file_id
        if st is None:
            return None
        try:
            conn = self._connect()
            found = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from exc
        if found not in (0, *READABLE_SCHEMAS):
            with closing(conn):
                pass
            raise StoreUnavailable(f"allocation store {self.path} has schema {found}, this version reads {SCHEMA_VERSION}")
        self._reader = conn
        return conn

    def _unreadable(self, exc: Exception) -> StoreUnavailable:
        """Forget the connection (the next read opens it again: a fixed file is read) and say why."""
        if self._reader is not None:
            with closing(self._reader):
                pass
        self._reader, self._data_version, self._file_id = None, None, None
        log.error("allocation store %s cannot be read: %s", self.path, exc)
        return StoreUnavailable(f"allocation store {self.path} cannot be read: {exc}")

    # --- Writes --------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction (`BEGIN IMMEDIATE`): no other writer, in this process or another,
        runs until it commits (on leaving the block) or rolls back (on an exception)."""
        with self._write_lock:
            conn = self._open_writer()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"allocation store {self.path} is locked or unwritable: {exc}") from exc
            try:
                yield Transaction(conn)
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"allocation store {self.path} cannot be used: {exc}") from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise StoreUnavailable(f"allocation store {self.path}: commit failed: {exc}") from exc

    def get(self, allocation_id: str) -> StoredAllocation | None:
        rows = self._select("SELECT id, created_at, answer FROM allocations WHERE id = ?", (allocation_id,))
        return rows[0] if rows else None

    def list(self) -> list[StoredAllocation]:
        return self._select("SELECT id, created_at, answer FROM allocations ORDER BY created_at, id", ())

    def _select(self, query: str, params: tuple[Any, ...]) -> list[StoredAllocation]:
        with self._read_lock:
            reader = self._open_reader()
            if reader is None:
                return []
            try:
                rows = reader.execute(query, params).fetchall() if _has_schema(reader) else []
                return [StoredAllocation(r[0], r[1], json.loads(r[2])) for r in rows]
            except (sqlite3.Error, ValueError) as exc:
                raise self._unreadable(exc) from exc

    def delete(self, allocation_id: str) -> bool:
        """Release an allocation and the stock it holds; False when there is none by that id."""
        with self._read_lock:
            if self._open_reader() is None:
                return False
        with self.transaction() as txn:
            return txn.delete(allocation_id)


class Transaction:
    """What an allocation does inside `AllocationStore.transaction()`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def placements(self) -> tuple[Placement, ...]:
        """Every allocation's placements, as committed (read inside the write lock: current)."""
        return _read_placements(self.conn)

    def insert(self, allocation_id: str, answer: dict[str, Any], placements: Sequence[Placement]) -> None:
        self.conn.execute("INSERT INTO allocations (id, created_at, answer) VALUES (?, ?, ?)",
                          (allocation_id, time.time(), json.dumps(answer, separators=(",", ":"))))
        self.conn.executemany(
            "INSERT INTO placements (key, allocation_id, site_id, flavor_id, vcpus, ram, need_eip, storage, grp,"
            " labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(p.key, allocation_id, p.site_id, p.flavor_id, p.vcpus, p.ram, int(p.need_eip),
              json.dumps(dict(p.storage), sort_keys=True), p.group, json.dumps(dict(p.labels), sort_keys=True))
             for p in placements],
        )

    def exists(self, allocation_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM allocations WHERE id = ?", (allocation_id,)).fetchone() is not None

    def delete(self, allocation_id: str) -> bool:
        return self.conn.execute("DELETE FROM allocations WHERE id = ?", (allocation_id,)).rowcount > 0


def _has_schema(conn: sqlite3.Connection) -> bool:
    """False for a database whose schema is not written yet (just created: nothing allocated)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'placements'").fetchone():
        return True
    if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
        return False
    raise sqlite3.DatabaseError("the placements table is missing")


def _read_placements(conn: sqlite3.Connection) -> tuple[Placement, ...]:
    columns = "key, site_id, flavor_id, vcpus, ram, need_eip, storage, grp"
    try:
        rows = conn.execute(f"SELECT {columns}, labels FROM placements ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:
        # A schema-1 store not yet opened for writing (which adds the column): no labels then.
        rows = conn.execute(f"SELECT {columns}, '{{}}' FROM placements ORDER BY rowid").fetchall()
    return tuple(
        Placement(key=key, site_id=site, flavor_id=flavor, vcpus=vcpus, ram=ram, need_eip=bool(eip),
                  storage=MappingProxyType(json.loads(storage)), group=group,
                  labels=MappingProxyType(json.loads(labels)))
        for key, site, flavor, vcpus, ram, eip, storage, group, labels in rows
    )
