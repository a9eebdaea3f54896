"""Statements run on the driver's own cursor: compiled once, without the ORM session.

The hot paths run a few fixed statements thousands of times a second: the session check of
every authenticated request (principal.py) and the verify call in front of every public API
request (services/key_check.py). Through the ORM session each would also pay for the
session's transaction, the result machinery and the compilation cache's look-up, several
times the database's own work. A `DriverStatement` keeps of SQLAlchemy only what is public:
the SQL is its compilation of the statement for the engine's dialect (named parameters), the
values pass through the columns' own type processors (UTC datetimes, SQLite's text dates and
integer booleans) both ways, and a driver error becomes SQLAlchemy's exception, a lost
connection invalidated, so the error handlers answer 503 as for any other statement.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection


class DriverStatement:
    """One statement compiled for a dialect, run on a connection's driver cursor."""

    def __init__(self, statement: sa.Executable, dialect: sa.Dialect) -> None:
        self.dialect = dialect  # the engine's: its driver's errors and disconnect test
        if dialect.paramstyle not in ("named", "pyformat"):
            # sqlite3 takes named parameters as well as its default qmark style.
            dialect = type(dialect)(paramstyle="named")
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        # The values the statement carries itself (its literals' parameters), converted once;
        # and for each parameter the caller names, its name in the SQL and its converter.
        self.constants: dict[str, Any] = {}
        self.inputs: dict[str, tuple[str, Any]] = {}
        for parameter, name in compiled.bind_names.items():
            process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
            if parameter.required:
                self.inputs[parameter.key] = (name, process)
            else:
                value = parameter.effective_value
                self.constants[name] = process(value) if process else value
        columns = statement.exported_columns
        self.keys = tuple(column.key for column in columns)
        # A row's columns by name, as attributes (a plain tuple underneath).
        self.row = namedtuple("Row", self.keys)
        # The columns whose values need converting, by position, with their own processors.
        self.converters = tuple(
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )

    def bound(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The parameters as the driver takes them: named as in the SQL, converted."""
        sent = dict(self.constants)
        for key, value in parameters.items():
            name, process = self.inputs[key]
            sent[name] = process(value) if process is not None and value is not None else value
        return sent

    def run(
        self, connection: PoolProxiedConnection, parameters: dict[str, Any], commit: bool = False
    ) -> tuple | None:
        """Execute on the connection's driver cursor; return the first row, its columns named
        as attributes (None without one). With `commit`, commit on the driver once the
        statement is done (a no-op on a connection in autocommit, whose statement committed
        itself)."""
        sent = self.bound(parameters)
        row = self._fetch(connection, sent, commit)
        if row is None:
            return None
        values = list(row)
        for index, convert in self.converters:
            values[index] = convert(values[index])
        return self.row(*values)

    def _fetch(
        self, connection: PoolProxiedConnection, sent: dict[str, Any], commit: bool
    ) -> tuple | None:
        """Execute and fetch; driver errors become SQLAlchemy's."""
        dialect = self.dialect
        driver = connection.driver_connection
        cursor = None
        try:
            cursor = driver.cursor()
            cursor.execute(self.sql, sent)
            row = cursor.fetchone() if self.keys else None
            # On SQLite closing the cursor ends the statement (a RETURNING keeps it open), and
            # only a finished statement can be committed.
            cursor.close()
            if commit:
                driver.commit()
            return row
        except dialect.loaded_dbapi.Error as error:
            lost = dialect.is_disconnect(error, driver, cursor)
            if lost:
                connection.invalidate(error)
            kind = sa.exc.OperationalError if lost else sa.exc.DBAPIError
            raise kind(self.sql, sent, error, connection_invalidated=lost) from error
        finally:
            if cursor is not None:
                with contextlib.suppress(dialect.loaded_dbapi.Error):
                    cursor.close()


@contextlib.contextmanager
def pooled(engine: sa.Engine) -> Iterator[PoolProxiedConnection]:
    """A connection of the engine's pool for `DriverStatement.run`, returned to it afterwards
    (a checkout that fails raises SQLAlchemy's error, which the error handlers answer 503)."""
    try:
        connection = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as error:
        raise sa.exc.OperationalError("connect", None, error) from error
    try:
        yield connection
    finally:
        connection.close()
