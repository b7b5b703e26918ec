"""A SQLite file serves one `meshplane serve`: a second is refused with a message that says
why and what to do; PostgreSQL takes no lock (replicas share it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.store import DatabaseInUse, one_server


def test_a_second_server_on_one_sqlite_file_is_refused_until_the_first_stops(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'mesh.db'}"
    with one_server(url):
        refused = pytest.raises(DatabaseInUse, match=r"SQLite serves one server.*PostgreSQL")
        with refused, one_server(url):
            pass
        with one_server(f"sqlite:///{tmp_path / 'other.db'}"):  # another file: its own
            pass
    with one_server(url):  # the first stopped
        pass


def test_postgresql_and_memory_take_no_lock() -> None:
    for url in ("postgresql://meshplane@127.0.0.1/mesh", "sqlite://"):
        with one_server(url), one_server(url):
            pass
