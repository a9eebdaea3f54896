"""The migrations go down to nothing and back up, and build exactly what the models describe.

Each run gets its own empty database: a temporary SQLite file, and a scratch PostgreSQL
database (created and dropped here) when DATABASE_URL points at PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from smartcv_account import create_app
from smartcv_account.extensions import db

from .conftest import TEST_CONFIG

pytestmark = pytest.mark.slow


def _postgres_url() -> str | None:
    """DATABASE_URL when it names a PostgreSQL server, else None."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql")) else None


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path) -> Iterator[str]:
    """A brand-new, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = _postgres_url()
    if server is None:
        pytest.skip("DATABASE_URL is not a PostgreSQL URL; the PostgreSQL run needs one")
    url = make_url(server).set(drivername="postgresql+psycopg")
    name = f"smartcv_mig_{secrets.token_hex(4)}"
    admin = url.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(app, *args: str) -> None:
    """Run `flask db ARGS` through the app's CLI and fail with its output on error."""
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, (args, result.output, result.exception)


def _tables(app) -> set[str]:
    """The names of the tables in the app's database."""
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def test_downgrade_to_base_then_upgrade_rebuilds_a_schema_matching_the_models(empty_database):
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database})
    try:
        _run(app, "upgrade")
        model_tables = {table.name for table in db.metadata.sorted_tables}
        assert model_tables <= _tables(app)

        _run(app, "downgrade", "base")
        assert _tables(app) - {"alembic_version"} == set()

        _run(app, "upgrade")
        with app.app_context(), db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
    finally:
        with app.app_context():
            db.engine.dispose()
    assert differences == []
