"""Alembic environment: run migrations on the connection `meshplane.store.migrate` hands over.

There is no alembic.ini; `migrate()` builds the Config in code and passes an open connection in
`config.attributes["connection"]`, already inside the transaction it will commit. Without one
(e.g. `alembic` run by hand with `-x url=...`), this opens its own engine from the URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from meshplane.store.engine import create_engine
from meshplane.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # Batch mode: SQLite cannot ALTER most things, so Alembic rebuilds tables there instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or use meshplane.store.migrate()")
    return url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is None:
        _run_own_engine(_url())
    else:
        _run(given)
