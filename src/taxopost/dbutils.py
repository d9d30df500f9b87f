"""Bulk row updates in one statement, for the hot path of jobs.

Django's ``bulk_update`` builds a ``CASE WHEN id = ... THEN ...`` expression per row and field,
which costs more Python time than the database spends on the rows. ``UPDATE ... FROM (VALUES
...)`` states the same in one statement; both PostgreSQL and SQLite (>= 3.33) run it. Values
are always passed as parameters, never formatted into the SQL. On SQLite a statement is split
only when the rows would pass more parameters than the backend allows (32,766).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models.expressions import ColPairs
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In

_CASTS = {
    "BigAutoField": "bigint",
    "BigIntegerField": "bigint",
    "ForeignKey": "bigint",
    "IntegerField": "integer",
    "PositiveIntegerField": "integer",
    "FloatField": "double precision",
    "BooleanField": "boolean",
}


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[tuple]) -> int:
    """Set ``fields`` of the rows whose primary key is each tuple's first item.

    ``rows``: ``(pk, value_of_fields[0], value_of_fields[1], ...)``. Returns the rows updated.
    """
    if not rows:
        return 0
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    pk = meta.pk
    casts = [_cast(pk)] + [_cast(field) for field in columns]
    table = connection.ops.quote_name(meta.db_table)
    assignments = ", ".join(
        f"{connection.ops.quote_name(field.column)} = v.column{i + 2}" for i, field in enumerate(columns)
    )
    key = f"{table}.{connection.ops.quote_name(pk.column)}"
    statement = f"UPDATE {table} SET {assignments} FROM {{source}} AS v WHERE {key} = v.column1"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array per column: a handful of parameters whatever the number of rows.
            arrays = ", ".join(f"CAST(%s AS {cast}[])" for cast in casts)
            names = ", ".join(f"column{i + 1}" for i in range(len(casts)))
            source = f"(SELECT * FROM unnest({arrays}) AS u({names}))"
            cursor.execute(statement.format(source=source), [list(column) for column in zip(*rows, strict=True)])
            return cursor.rowcount
        placeholder = "(" + ", ".join(f"CAST(%s AS {cast})" for cast in casts) + ")"
        updated = 0
        for batch in _batches(rows, len(casts)):
            source = f"(VALUES {', '.join([placeholder] * len(batch))})"
            cursor.execute(statement.format(source=source), [value for row in batch for value in row])
            updated += cursor.rowcount
        return updated


#: Integer column types ``any_of`` sends as an array, with the range of values each can hold.
_INTEGER_RANGES = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


class _ArrayOnPostgresql:
    """``IN`` over integer keys, with the values passed as one array on PostgreSQL.

    ``IN (%s, %s, ...)`` names one parameter per value: for the thousands of keys of a job's
    chunk, building and parsing that SQL (Django, then the driver) costs more than running it.
    ``= ANY(%s)`` passes the list as one parameter, so the SQL that Django builds and psycopg
    parses is the same whatever the list's length. Elsewhere it is ``IN``, as it is for a
    subquery, a multi-column key, a transformed column and a column that is not an integer
    (a cast to ``varchar(n)[]`` would cut long values short and make them match).
    """

    lookup_name = "any_of"

    def as_postgresql(self, compiler, connection):
        db_type = self.lhs.output_field.db_type(connection)
        if (
            db_type not in _INTEGER_RANGES
            or not self.rhs_is_direct_value()
            or isinstance(self.lhs, ColPairs)
            or self.bilateral_transforms
        ):
            return super().as_sql(compiler, connection)
        limit = _INTEGER_RANGES[db_type]
        # NULL equals nothing, and a value out of the column's range equals no row: as with IN.
        values = [value for value in self.rhs if value is not None and -limit <= value < limit]
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{db_type}[])", (*lhs_params, values)


class AnyOf(_ArrayOnPostgresql, In):
    """``key__any_of=values`` on an integer field (registered by the observations app's config)."""


class RelatedAnyOf(_ArrayOnPostgresql, RelatedIn):
    """``foreign_key__any_of=values``: related fields keep lookups of their own."""


def _cast(field: models.Field) -> str:
    try:
        return _CASTS[field.get_internal_type()]
    except KeyError:
        raise TypeError(f"update_rows does not handle {field.get_internal_type()} ({field.name})") from None


def fetch_rows(queryset: models.QuerySet) -> list[tuple]:
    """The rows of a ``values_list`` queryset; on PostgreSQL fetched in binary format.

    Score vectors dominate a chunk's bytes: PostgreSQL's text format sends ``bytea`` as hex
    (twice the size, decoded in Python); the binary format sends the bytes as they are.
    """
    if connection.vendor != "postgresql":
        return list(queryset)
    import psycopg

    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    # Django's wrapper turns psycopg's errors into django.db's (OperationalError, ...), as for any query.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


_PASSED_AS_IS = {
    "AutoField", "BigAutoField", "BigIntegerField", "IntegerField", "PositiveIntegerField",
    "PositiveSmallIntegerField", "SmallIntegerField", "ForeignKey", "FloatField", "BooleanField",
    "BinaryField", "CharField", "TextField",
}  # fmt: skip


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[tuple]) -> int:
    """Insert rows (values in ``fields`` order) in one statement, without model instances.

    On PostgreSQL the rows are streamed with ``COPY`` (no SQL text to build or parse); elsewhere
    one multi-row ``INSERT``. Values are prepared by each field (JSON, dates) as the ORM would;
    defaults such as ``auto_now_add`` are not applied, so pass every value.
    """
    if not rows:
        return 0
    columns = [model._meta.get_field(name) for name in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(field.column) for field in columns)
    # Keys, numbers, booleans and bytes go to the driver as they are; only the fields that need
    # it (JSON, dates) are prepared by Django: per value, that preparation costs more than COPY.
    needs_prep = [i for i, field in enumerate(columns) if field.get_internal_type() not in _PASSED_AS_IS]
    prepared = [list(row) for row in rows]
    # A value shared by many rows (a job's timestamp, the details of every detection of one
    # occurrence) is prepared once: the rows hold it, so its id stays its own during the call.
    done: list[dict[int, object]] = [{} for _ in columns]
    for row in prepared:
        for i in needs_prep:
            value = row[i]
            key = id(value)
            if key not in done[i]:
                done[i][key] = columns[i].get_db_prep_save(value, connection)
            row[i] = done[i][key]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Binary COPY: bytea goes as it is, where the text format sends it as hex (twice the
            # bytes, encoded and decoded): 1.3 to 4 times faster for rows carrying score vectors.
            sql = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
            with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
                copy.set_types([_copy_type(field) for field in columns])
                for row in prepared:
                    copy.write_row(row)
            return len(rows)
        placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for batch in _batches(prepared, len(columns)):
            sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([placeholder] * len(batch))}"
            cursor.execute(sql, [value for row in batch for value in row])
        return len(rows)


def _copy_type(field: models.Field) -> str:
    """The PostgreSQL type a binary COPY declares for a column (``varchar(255)`` -> ``varchar``)."""
    return field.db_type(connection).split("(", 1)[0].strip()


def _batches(rows: Sequence, width: int) -> list[Sequence]:
    """Rows split so that no statement passes more parameters than the backend accepts.

    One statement for a chunk of the default size; a larger configured chunk takes a few.
    """
    limit = connection.features.max_query_params or len(rows) * width
    step = max(1, limit // width)
    return [rows[start : start + step] for start in range(0, len(rows), step)]
