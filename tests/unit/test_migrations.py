"""The migrations create exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from dcp.db.base import Base

# Indexes on an expression (a DESC column), which alembic cannot compare on SQLite: checked by name below.
_EXPRESSION_INDEXES = {"ix_jobs_claim"}


def _comparable(obj, name, type_, reflected, compare_to):
    return not (type_ == "index" and name in _EXPRESSION_INDEXES)


async def test_models_match_migrations(database):
    def diff(connection):
        opts = {"compare_type": True, "include_object": _comparable}
        context = MigrationContext.configure(connection, opts=opts)
        return compare_metadata(context, Base.metadata)

    def index_names(connection):
        return {index["name"] for index in inspect(connection).get_indexes("jobs")}

    async with database.engine.connect() as connection:
        assert await connection.run_sync(diff) == []
        assert await connection.run_sync(index_names) >= _EXPRESSION_INDEXES
