"""Database plumbing: engine, sessions, column types and Alembic migrations."""
