"""Bulk writes: many rows into one table in one driver call (`BulkInsert`, `BulkIncrement`), and
several tables' writes in one statement (`BulkWrites`).

`connection.execute(insert(table), rows)` spends most of its time on per-row bookkeeping that a
batch of uniform, already-built rows does not need. Submits write five rows each in
group-committed batches (backend/jobs/enqueue.py): this is their path, one statement per table
and batch, and on each database the cheapest way there:

- SQLite: the one-row statement compiled once per column set, each value converted by its column
  type's own bind processor (the very conversion SQLAlchemy applies: UTC datetimes, JSON, ...),
  every row handed to the driver's executemany, which loops over them in C.
- PostgreSQL: the whole batch as one JSON array, expanded by the server (`json_to_recordset`).
  psycopg's executemany adapts every value of every row in Python and waits on the socket
  several times per batch; measured here, that cost about three times the CPU of one
  `orjson.dumps` and one statement. JSON columns keep their text, key order included. And a
  batch's writes to several tables go as one statement, each table's part a data-modifying CTE,
  so the batch waits on the server once instead of once per table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Table, bindparam, insert, update
from sqlalchemy.engine import Connection, Dialect

from backend.db.base import Base, UTCDateTime
from backend.db.engine import json_dumps

Processor = Callable[[Any], Any]
Rows = Sequence[Mapping[str, Any]]
_NOTHING = object()


class BulkWrite(ABC):
    """One table's write of many rows: now (`write(connection, rows)`), or in `BulkWrites`."""

    def __call__(self, connection: Connection, rows: Rows) -> None:
        """Write `rows` now."""
        if not rows:
            return
        if connection.dialect.name == "postgresql":
            sql, document = self.postgres_part(connection.dialect, rows, "rows")
            connection.exec_driver_sql(sql, {"rows": document})
        else:
            self._write_sqlite(connection, rows)

    @abstractmethod
    def postgres_part(self, dialect: Dialect, rows: Rows, parameter: str) -> tuple[str, str]:
        """The PostgreSQL statement that writes `rows` reading them from `%(parameter)s`, and
        that parameter's value: the rows as one JSON array."""

    @abstractmethod
    def _write_sqlite(self, connection: Connection, rows: Rows) -> None:
        """Write `rows` now, on SQLite."""


class BulkWrites:
    """A transaction's bulk writes, gathered from several services and sent by `execute`.

    On PostgreSQL they become one statement: each write a data-modifying CTE, all run on one
    snapshot, foreign keys checked at the end of the statement (so a child may come before its
    parent). On SQLite, where the driver's executemany is already cheap and foreign keys are
    checked per statement, each runs in the order it was added.
    """

    def __init__(self) -> None:
        self._writes: list[tuple[BulkWrite, Rows]] = []

    def add(self, write: BulkWrite, rows: Rows) -> None:
        if rows:
            self._writes.append((write, rows))

    def execute(self, connection: Connection) -> None:
        writes, self._writes = self._writes, []
        dialect = connection.dialect
        if dialect.name != "postgresql" or len(writes) < 2:
            for write, rows in writes:
                write(connection, rows)
            return
        parts, parameters = [], {}
        for i, (write, rows) in enumerate(writes):
            sql, parameters[f"rows_{i}"] = write.postgres_part(dialect, rows, f"rows_{i}")
            parts.append(sql)
        *ctes, last = parts
        ctes_sql = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(ctes))
        connection.exec_driver_sql(f"WITH {ctes_sql} {last}", parameters)


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


class BulkInsert(BulkWrite):
    """Inserts rows, which must all have the same keys (column names)."""

    def __init__(self, model: type[Base]) -> None:
        self.table = cast(Table, model.__table__)
        self._statements: dict[tuple[str, tuple[str, ...], str], _Statement] = {}

    def _write_sqlite(self, connection: Connection, rows: Rows) -> None:
        dialect = connection.dialect
        columns = self._columns(rows)
        statement = self._statement(dialect, columns, parameter="")
        values = self._converted(rows, columns, statement)
        params: list[Any] = (
            [tuple([row[i] for i in statement.order]) for row in values]
            if dialect.positional
            else [dict(zip(columns, row, strict=True)) for row in values]
        )
        connection.exec_driver_sql(statement.sql, params)

    def postgres_part(self, dialect: Dialect, rows: Rows, parameter: str) -> tuple[str, str]:
        columns = self._columns(rows)
        statement = self._statement(dialect, columns, parameter)
        values = self._converted(rows, columns, statement)
        document = orjson.dumps([dict(zip(columns, row, strict=True)) for row in values])
        return statement.sql, document.decode()

    def _columns(self, rows: Rows) -> tuple[str, ...]:
        if any(row.keys() != rows[0].keys() for row in rows):
            raise ValueError(f"{self.table.name}: every row of a bulk insert needs the same keys")
        return tuple(rows[0])

    @staticmethod
    def _converted(rows: Rows, columns: tuple[str, ...], statement: _Statement) -> list[list[Any]]:
        pairs = list(zip(columns, statement.processors, strict=True))
        return [[row[c] if fn is None else fn(row[c]) for c, fn in pairs] for row in rows]

    def _statement(self, dialect: Dialect, columns: tuple[str, ...], parameter: str) -> _Statement:
        key = (f"{dialect.name}+{dialect.driver}", columns, parameter)
        statement = self._statements.get(key)
        if statement is None:
            if dialect.name == "postgresql":
                statement = self._json_statement(dialect, columns, parameter)
            else:
                compiled = insert(self.table).compile(dialect=dialect, column_keys=list(columns))
                statement = _Statement(
                    sql=compiled.string,
                    processors=self._processors(dialect, columns),
                    order=[columns.index(name) for name in compiled.positiontup or ()],
                )
            self._statements[key] = statement
        return statement

    def _json_statement(
        self, dialect: Dialect, columns: tuple[str, ...], parameter: str
    ) -> _Statement:
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
        # values orjson writes as the server reads them back.
        processors = self._processors(dialect, columns)
        # Only the table's own (quoted) names are spliced in; the rows travel as the parameter.
        sql = (
            f"INSERT INTO {quote(self.table.name)} ({names}) SELECT {', '.join(selected)} "  # noqa: S608
            f"FROM json_to_recordset(%({parameter})s::json) AS r({', '.join(declared)})"
        )
        return _Statement(sql=sql, processors=processors, order=[])

    def _processors(self, dialect: Dialect, columns: tuple[str, ...]) -> list[Processor | None]:
        processors: list[Processor | None] = []
        timestamps: _SameAsLast | None = None  # one for all timestamp columns of a row
        for column in columns:
            column_type = self.table.c[column].type
            if isinstance(column_type, JSON):
                # Their text, serialised as the engines do (None included: JSON null), without
                # SQLAlchemy's wrapper around the serialiser: a submit writes six of them.
                processors.append(json_dumps)
                continue
            process = cast(
                Processor | None, column_type.dialect_impl(dialect).bind_processor(dialect)
            )
            if process is not None and isinstance(column_type, UTCDateTime):
                timestamps = timestamps or _SameAsLast(process)
                process = timestamps
            processors.append(process)
        return processors


class BulkIncrement(BulkWrite):
    """Adds each row's `delta` to `column` of the row whose primary key is the row's `id`: a
    batch's balance moves. Rows must name distinct ids."""

    def __init__(self, model: type[Base], column: str) -> None:
        self.table = cast(Table, model.__table__)
        self.column = column
        [self._key] = self.table.primary_key.columns
        self._sqlite: tuple[str, list[str]] | None = None  # (SQL, parameter names in order)
        self._postgres: dict[str, str] = {}  # SQL by the name of the parameter it reads

    def _write_sqlite(self, connection: Connection, rows: Rows) -> None:
        _check_distinct(rows)
        if self._sqlite is None:
            # Bound parameters may not take a column's name in an UPDATE; rows still say id.
            statement = (
                update(self.table)
                .where(self._key == bindparam("row_id"))
                .values({self.column: self.table.c[self.column] + bindparam("row_delta")})
            )
            compiled = statement.compile(dialect=connection.dialect)
            order = [name.removeprefix("row_") for name in compiled.positiontup or ()]
            self._sqlite = compiled.string, order
        sql, order = self._sqlite
        connection.exec_driver_sql(sql, [tuple([row[name] for name in order]) for row in rows])

    def postgres_part(self, dialect: Dialect, rows: Rows, parameter: str) -> tuple[str, str]:
        _check_distinct(rows)
        sql = self._postgres.get(parameter)
        if sql is None:
            sql = self._postgres[parameter] = self._postgres_sql(dialect, parameter)
        document = orjson.dumps([{"id": row["id"], "delta": row["delta"]} for row in rows])
        return sql, document.decode()

    def _postgres_sql(self, dialect: Dialect, parameter: str) -> str:
        quote = dialect.identifier_preparer.quote
        table, column, key = quote(self.table.name), quote(self.column), quote(self._key.name)
        key_type = self._key.type.compile(dialect=dialect)
        delta_type = self.table.c[self.column].type.compile(dialect=dialect)
        records = (
            f"json_to_recordset(%({parameter})s::json) AS r(id {key_type}, delta {delta_type})"
        )
        return (
            f"UPDATE {table} SET {column} = {table}.{column} + r.delta "  # noqa: S608
            f"FROM {records} WHERE {table}.{key} = r.id"
        )


def _check_distinct(rows: Rows) -> None:
    # PostgreSQL's UPDATE ... FROM would apply only one of two rows for the same id.
    if len({row["id"] for row in rows}) != len(rows):
        raise ValueError("a bulk increment takes each id once")
