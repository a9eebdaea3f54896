"""Statements run straight on the database driver's cursor, for the query of every request."""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa


class DriverStatement:
    """A Core SELECT compiled once for a dialect and run on the driver's own cursor.

    SQLAlchemy's execution path (an execution context, result metadata built from the cursor's
    description, a Row) costs several times what the driver itself spends on a one-row read:
    on PostgreSQL about 160 µs of the session check's 210 µs of CPU, most of it psycopg
    describing each of the 40-odd selected columns again on every execution. What matters of
    SQLAlchemy is kept: the SQL is its compilation of the statement for the engine's dialect,
    parameters and values pass through the type processors it would apply (UTC datetimes,
    SQLite's text dates and booleans, JSON), and driver errors become its exceptions, a lost
    connection invalidated and marked as such. Its cursor events are not fired (listeners
    would get no execution context), so the query-budget tests count these statements apart.
    """

    def __init__(self, statement: sa.Select | sa.TextualSelect, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._dialect = dialect
        self._order = tuple(compiled.positiontup) if compiled.positional else None
        self._binds = tuple(
            (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in compiled.binds.items()
        )
        self._keys = tuple(column.key for column in statement.selected_columns)
        # Only the columns whose type converts the driver's value (most do not).
        self._processed = tuple(
            (column.key, process)
            for column in statement.selected_columns
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )

    def first(self, connection: sa.Connection, parameters: dict[str, Any]) -> dict | None:
        """Run the statement on `connection`; return its first row as a dict, or None."""
        values = {
            name: process(parameters[name]) if process else parameters[name]
            for name, process in self._binds
        }
        sent = tuple(values[name] for name in self._order) if self._order is not None else values
        driver = connection.connection.driver_connection
        cursor = None
        try:
            cursor = driver.cursor()
            cursor.execute(self.sql, sent)
            row = cursor.fetchone()
        except self._dialect.loaded_dbapi.Error as error:
            lost = self._dialect.is_disconnect(error, driver, cursor)
            if lost:
                connection.invalidate(error)
            raise sa.exc.DBAPIError.instance(
                self.sql,
                sent,
                error,
                self._dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=self._dialect,
            ) from error
        finally:
            if cursor is not None:
                with contextlib.suppress(self._dialect.loaded_dbapi.Error):
                    cursor.close()
        if row is None:
            return None
        values = dict(zip(self._keys, row, strict=True))
        for key, process in self._processed:
            values[key] = process(values[key])
        return values
