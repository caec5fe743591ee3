"""`BulkInsert`: many rows into one table in one driver call.

`connection.execute(insert(table), rows)` spends most of its time on per-row bookkeeping that a
batch of uniform, already-built rows does not need. Submits write five rows each in
group-committed batches (backend/jobs/enqueue.py): this is their path, one statement per table
and batch, and on each database the cheapest way there:

- SQLite: the one-row INSERT compiled once per column set, each value converted by its column
  type's own bind processor (the very conversion SQLAlchemy applies: UTC datetimes, JSON, ...),
  every row handed to the driver's executemany, which loops over them in C.
- PostgreSQL: the whole batch as one JSON array, expanded by the server (`json_to_recordset`).
  psycopg's executemany adapts every value of every row in Python and waits on the socket
  several times per batch; measured here, that cost about three times the CPU of one
  `orjson.dumps` and one statement. JSON columns keep their text, key order included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Table, insert
from sqlalchemy.engine import Connection, Dialect

from backend.db.base import Base, UTCDateTime
from backend.db.engine import json_dumps

Processor = Callable[[Any], Any]
_NOTHING = object()


class _SameAsLast:
    """A bind processor that reuses its last result for the very same value: a batch's rows
    share one timestamp (created_at, updated_at), and formatting it is the costliest conversion
    of a row on SQLite."""

    def __init__(self, process: Processor) -> None:
        self._process = process
        # (value, result), swapped whole: PostgreSQL writers run in threads of their own.
        self._last: tuple[Any, Any] = (_NOTHING, None)

    def __call__(self, value: Any) -> Any:
        last_value, last_result = self._last
        if value is last_value:
            return last_result
        result = self._process(value)
        self._last = (value, result)
        return result


@dataclass(frozen=True)
class _Statement:
    sql: str
    processors: list[Processor | None]  # per column, in the rows' key order
    order: list[int]  # positional drivers: the column of each parameter


class BulkInsert:
    def __init__(self, model: type[Base]) -> None:
        self.table = cast(Table, model.__table__)
        self._statements: dict[tuple[str, tuple[str, ...]], _Statement] = {}

    def __call__(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows`, which must all have the same keys (column names)."""
        if not rows:
            return
        columns = tuple(rows[0])
        if any(row.keys() != rows[0].keys() for row in rows):
            raise ValueError(f"{self.table.name}: every row of a bulk insert needs the same keys")
        dialect = connection.dialect
        statement = self._statement(dialect, columns)
        pairs = list(zip(columns, statement.processors, strict=True))
        values = [[row[c] if fn is None else fn(row[c]) for c, fn in pairs] for row in rows]
        if dialect.name == "postgresql":
            document = orjson.dumps([dict(zip(columns, row, strict=True)) for row in values])
            connection.exec_driver_sql(statement.sql, {"rows": document.decode()})
            return
        params: list[Any] = (
            [tuple([row[i] for i in statement.order]) for row in values]
            if dialect.positional
            else [dict(zip(columns, row, strict=True)) for row in values]
        )
        connection.exec_driver_sql(statement.sql, params)

    def _statement(self, dialect: Dialect, columns: tuple[str, ...]) -> _Statement:
        key = (f"{dialect.name}+{dialect.driver}", columns)
        statement = self._statements.get(key)
        if statement is None:
            if dialect.name == "postgresql":
                statement = self._json_statement(dialect, columns)
            else:
                compiled = insert(self.table).compile(dialect=dialect, column_keys=list(columns))
                statement = _Statement(
                    sql=compiled.string,
                    processors=self._processors(dialect, columns),
                    order=[columns.index(name) for name in compiled.positiontup or ()],
                )
            self._statements[key] = statement
        return statement

    def _json_statement(self, dialect: Dialect, columns: tuple[str, ...]) -> _Statement:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(column) for column in columns)
        # JSON columns travel as JSON text inside the document and are cast back by the server:
        # expanded in place, a string holding \u0000 (valid JSON, stored fine by a `json`
        # column) would make the server refuse the whole batch.
        declared, selected = [], []
        for column in columns:
            column_type = self.table.c[column].type
            if isinstance(column_type, JSON):
                declared.append(f"{quote(column)} text")
                selected.append(f"{quote(column)}::json")
            else:
                declared.append(f"{quote(column)} {column_type.compile(dialect=dialect)}")
                selected.append(quote(column))
        # The column types' own bind processors (UTC datetimes, checked: no naive ones) leave
        # values orjson writes as the server reads them back; JSON columns become their text,
        # serialised as SQLAlchemy does (None included: JSON null, as on SQLite).
        processors = [
            json_dumps if isinstance(self.table.c[column].type, JSON) else process
            for column, process in zip(columns, self._processors(dialect, columns), strict=True)
        ]
        # Only the table's own (quoted) names are spliced in; the rows travel as the parameter.
        sql = (
            f"INSERT INTO {quote(self.table.name)} ({names}) SELECT {', '.join(selected)} "  # noqa: S608
            f"FROM json_to_recordset(%(rows)s::json) AS r({', '.join(declared)})"
        )
        return _Statement(sql=sql, processors=processors, order=[])

    def _processors(self, dialect: Dialect, columns: tuple[str, ...]) -> list[Processor | None]:
        processors: list[Processor | None] = []
        timestamps: _SameAsLast | None = None  # one for all timestamp columns of a row
        for column in columns:
            column_type = self.table.c[column].type
            process = cast(
                Processor | None, column_type.dialect_impl(dialect).bind_processor(dialect)
            )
            if process is not None and isinstance(column_type, UTCDateTime):
                timestamps = timestamps or _SameAsLast(process)
                process = timestamps
            processors.append(process)
        return processors
