"""How a data table's columns become Parquet columns, and each row's key for the checksum.

The columns are the table's real ones, read from the catalog (:func:`table_schema`), in
their order; the partition key (the DataTable's time column) and ``app`` are among them.
Each PostgreSQL type has a :class:`Kind`:

=============================  ==============================  ==============================
PostgreSQL type                Parquet (Arrow) type            key text of a value
=============================  ==============================  ==============================
timestamp with time zone       timestamp[us, tz=UTC]           microseconds since 1970, decimal
timestamp without time zone    timestamp[us]                   microseconds since 1970, decimal
date                           date32                          days since 1970-01-01, decimal
smallint / integer / bigint    int16 / int32 / int64           decimal
real / double precision        float / double                  the IEEE 754 bits as a signed
                                                               int32 / int64, decimal
boolean                        bool                            ``true`` / ``false``
anything else (text, jsonb,    string: PostgreSQL's text form  the text itself
numeric, uuid, arrays, ...)    (jsonb: its JSON text)
=============================  ==============================  ==============================

A row's key is, for each column in order, ``-`` for NULL or ``<octet length>:<key text>``,
concatenated: the length prefix makes it unambiguous whatever the text holds. PostgreSQL
computes it in SQL (:meth:`TableSchema.stats_query`) from the partition and Python computes
it with pyarrow from the Parquet file (:meth:`TableSchema.key_checksum`); the two agree
only when every value survived the trip. The checksum of the keys is
:class:`drain.archive.layout.Checksum`.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from drain.archive.layout import Checksum
from drain.store.database import Conn
from drain.store.tables import DataTable

__all__ = ["Column", "Kind", "TableSchema", "quote_ident", "schema_of", "table_schema"]


class Kind(enum.StrEnum):
    """How a column is stored in Parquet (see the module docstring)."""

    TIMESTAMPTZ = "timestamptz"
    TIMESTAMP = "timestamp"
    DATE = "date"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOL = "bool"
    TEXT = "text"


#: the base type name (``regtype::text``) of each PostgreSQL type stored natively
_KINDS = {
    "timestamp with time zone": Kind.TIMESTAMPTZ,
    "timestamp without time zone": Kind.TIMESTAMP,
    "date": Kind.DATE,
    "smallint": Kind.INT16,
    "integer": Kind.INT32,
    "bigint": Kind.INT64,
    "real": Kind.FLOAT32,
    "double precision": Kind.FLOAT64,
    "boolean": Kind.BOOL,
}

#: the PostgreSQL type a restore stages each kind in (TEXT: its text, cast back in SQL)
_STAGE_TYPES = {
    Kind.TIMESTAMPTZ: "timestamptz",
    Kind.TIMESTAMP: "timestamp",
    Kind.DATE: "date",
    Kind.INT16: "smallint",
    Kind.INT32: "integer",
    Kind.INT64: "bigint",
    Kind.FLOAT32: "real",
    Kind.FLOAT64: "double precision",
    Kind.BOOL: "boolean",
    Kind.TEXT: "text",
}


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _arrow_type(kind: Kind) -> pa.DataType:
    if kind is Kind.TIMESTAMPTZ:
        return pa.timestamp("us", tz="UTC")
    if kind is Kind.TIMESTAMP:
        return pa.timestamp("us")
    types: dict[Kind, pa.DataType] = {
        Kind.DATE: pa.date32(),
        Kind.INT16: pa.int16(),
        Kind.INT32: pa.int32(),
        Kind.INT64: pa.int64(),
        Kind.FLOAT32: pa.float32(),
        Kind.FLOAT64: pa.float64(),
        Kind.BOOL: pa.bool_(),
        Kind.TEXT: pa.string(),
    }
    return types[kind]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a data table.

    Fields:
        name: its name. pg_type: its type as ``format_type`` spells it (with any typmod),
        for casts. kind: how it is stored (:class:`Kind`). not_null: declared NOT NULL.
    """

    name: str
    pg_type: str
    kind: Kind
    not_null: bool

    @property
    def arrow_type(self) -> pa.DataType:
        """Its Parquet column's Arrow type."""
        return _arrow_type(self.kind)

    @property
    def csv_type(self) -> pa.DataType:
        """The type its CSV export parses as (timestamps as int64 microseconds, dates as
        int32 days, the rest as stored)."""
        if self.kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP):
            return pa.int64()
        if self.kind is Kind.DATE:
            return pa.int32()
        return self.arrow_type

    @property
    def stage_type(self) -> str:
        """The type a restore's staging table gives it."""
        return _STAGE_TYPES[self.kind]

    def export_sql(self) -> str:
        """The select-list expression of the CSV export (parsed as :attr:`csv_type`)."""
        c = quote_ident(self.name)
        if self.kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP):
            return f"(extract(epoch FROM {c}) * 1000000)::bigint"
        if self.kind is Kind.DATE:
            return f"({c} - date '1970-01-01')"
        if self.kind is Kind.TEXT:
            return f"{c}::text"
        return c

    def key_sql(self) -> str:
        """SQL for the key text of a value (NULL for NULL)."""
        c = quote_ident(self.name)
        if self.kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP):
            return f"(extract(epoch FROM {c}) * 1000000)::bigint::text"
        if self.kind is Kind.DATE:
            return f"({c} - date '1970-01-01')::text"
        if self.kind is Kind.FLOAT64:
            return f"(('x' || encode(float8send({c}), 'hex'))::bit(64)::bigint)::text"
        if self.kind is Kind.FLOAT32:
            return f"(('x' || encode(float4send({c}), 'hex'))::bit(32)::integer)::text"
        return f"{c}::text"

    def key_text(self, values: Any) -> Any:
        """The key text of each value of a Parquet column (NULL stays NULL)."""
        if self.kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP):
            return pc.cast(values.cast(pa.int64()), pa.string())
        if self.kind is Kind.DATE:
            return pc.cast(values.cast(pa.int32()), pa.string())
        if self.kind is Kind.FLOAT64:
            return pc.cast(values.view(pa.int64()), pa.string())
        if self.kind is Kind.FLOAT32:
            return pc.cast(values.view(pa.int32()), pa.string())
        if self.kind is Kind.TEXT:
            return values
        return pc.cast(values, pa.string())

    def describe(self) -> dict[str, str]:
        """Its entry in a manifest's ``columns``."""
        return {
            "name": self.name,
            "postgres_type": self.pg_type,
            "parquet_type": str(self.arrow_type),
        }


def _field_sql(column: Column) -> str:
    value = column.key_sql()
    return f"coalesce(octet_length({value})::text || ':' || {value}, '-')"


@dataclass(frozen=True, slots=True)
class TableSchema:
    """A data table's columns as the archive stores them.

    Fields:
        table: the table (a :data:`drain.store.tables.TABLES` name).
        columns: every column, in catalog order.
        time_column: the partition key (DataTable.row_columns[time_index]).
        app_column: the app (DataTable.row_columns[app_index]).
    """

    table: str
    columns: tuple[Column, ...]
    time_column: str
    app_column: str

    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema of every Parquet file of this table (NOT NULL columns not nullable)."""
        return pa.schema([pa.field(c.name, c.arrow_type, not c.not_null) for c in self.columns])

    def column(self, name: str) -> Column:
        """The column ``name``.

        Raises:
            KeyError: no such column.
        """
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def export_query(self, partition: str) -> str:
        """Every row of ``partition`` for the CSV export, by app (bytewise) then time."""
        select = ", ".join(c.export_sql() for c in self.columns)
        app, time = quote_ident(self.app_column), quote_ident(self.time_column)
        return f'SELECT {select} FROM {quote_ident(partition)} ORDER BY {app} COLLATE "C", {time}'

    def key_sql(self) -> str:
        """SQL for a row's key (see the module docstring)."""
        return " || ".join(_field_sql(c) for c in self.columns)

    def stats_query(self, relation: str, where: str = "") -> str:
        """Per app: ``app, rows, min_time, max_time, sum_a, sum_b`` over ``relation``
        (optionally filtered by ``where``, SQL), computed in PostgreSQL."""
        app, time = quote_ident(self.app_column), quote_ident(self.time_column)
        return f"""
            SELECT {app} AS app, count(*) AS rows, min({time}) AS min_time,
                   max({time}) AS max_time,
                   coalesce(sum(substring(h FROM 1 FOR 64)::bigint), 0) AS sum_a,
                   coalesce(sum(substring(h FROM 65 FOR 64)::bigint), 0) AS sum_b
              FROM (SELECT {app}, {time}, ('x' || md5({self.key_sql()}))::bit(128) AS h
                      FROM {quote_ident(relation)} {where}) AS keyed
             GROUP BY {app}"""

    def key_checksum(self, batch: pa.RecordBatch | pa.Table) -> Checksum:
        """The :class:`Checksum` of the rows of ``batch`` (whose columns are this schema's)."""
        if batch.num_rows == 0:
            return Checksum()
        fields = []
        for column in self.columns:
            values = batch.column(column.name)
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            text: Any = column.key_text(values)
            length = pc.cast(pc.binary_length(text), pa.string())
            fields.append(pc.fill_null(pc.binary_join_element_wise(length, text, ":"), "-"))
        keys = pc.binary_join_element_wise(*fields, "")
        return _md5_lanes(keys)

    def describe(self) -> list[dict[str, str]]:
        """A manifest's ``columns``."""
        return [c.describe() for c in self.columns]


def _md5_lanes(keys: Any) -> Checksum:
    """Sum the MD5 lanes of every value of a string array (no NULLs)."""
    _, offsets_buffer, data_buffer = keys.buffers()
    assert offsets_buffer is not None
    offsets = memoryview(offsets_buffer).cast("i")[keys.offset : keys.offset + len(keys) + 1]
    data = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")
    md5 = hashlib.md5
    sum_a = sum_b = 0
    bounds = offsets.tolist()
    for start, end in itertools.pairwise(bounds):
        digest = md5(data[start:end], usedforsecurity=False).digest()
        sum_a += int.from_bytes(digest[:8], "big")
        sum_b += int.from_bytes(digest[8:], "big")
    return Checksum.of_sums(len(keys), sum_a, sum_b)


async def table_schema(conn: Conn, table: DataTable) -> TableSchema:
    """The columns of ``table`` (its parent table in the catalog), in order.

    Raises:
        asyncpg.PostgresError: e.g. UndefinedTableError when the table does not exist.
    """
    rows = await conn.fetch(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS pg_type,
               a.atttypid::regtype::text AS base, a.attnotnull
          FROM pg_attribute a
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum
        """,
        table.name,
    )
    columns = tuple(
        Column(r["attname"], r["pg_type"], _KINDS.get(r["base"], Kind.TEXT), r["attnotnull"])
        for r in rows
    )
    return TableSchema(
        table.name,
        columns,
        table.row_columns[table.time_index],
        table.row_columns[table.app_index],
    )


def schema_of(table: str, described: Iterable[dict[str, Any]], time: str, app: str) -> TableSchema:
    """A :class:`TableSchema` rebuilt from a manifest's ``columns`` (a restore uses the
    columns the files were written with)."""
    columns = []
    for entry in described:
        kind = next((k for k in Kind if str(_arrow_type(k)) == entry["parquet_type"]), Kind.TEXT)
        columns.append(Column(str(entry["name"]), str(entry["postgres_type"]), kind, False))
    return TableSchema(table, tuple(columns), time, app)
