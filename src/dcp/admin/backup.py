"""``dcp admin backup`` and ``restore``: SQLite through its online backup API, PostgreSQL through pg_dump."""

from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, make_url

from dcp.config import Settings
from dcp.db.migrate import alembic_config, upgrade

COMMANDS = frozenset({"backup", "restore"})


class BackupRefused(Exception):
    """The backup or restore cannot go ahead; the message says why."""


def add_commands(admin_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = admin_commands.add_parser(
        "backup", help="copy the database to PATH, consistent while the server runs (SQLite)"
    )
    backup.add_argument("path", type=Path, help="a new file")
    restore = admin_commands.add_parser(
        "restore", help="put the backup at PATH in place of the configured database, then check the ledger"
    )
    restore.add_argument("path", type=Path, help="a file written by `dcp admin backup`")
    restore.add_argument("--force", action="store_true", help="replace an existing database (server stopped)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Back up or restore; 0 when done (the caller then checks a restored ledger), 1 refused, 2 PostgreSQL."""
    if not settings.is_sqlite:
        print(postgres_advice(args.admin_command, args.path, settings.database_url), file=sys.stderr)
        return 2
    database = Path(make_url(settings.database_url).database or "")
    try:
        if args.admin_command == "backup":
            print(backup(database, args.path))
        else:
            print(restore(args.path, database, force=args.force))
            upgrade(settings.database_url)  # a backup from an older DCP gets this one's schema
    except BackupRefused as exc:
        print(f"dcp admin {args.admin_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def backup(database: Path, target: Path) -> str:
    """Copy ``database`` to ``target`` in one read transaction: a consistent snapshot, even while the
    server writes (WAL readers never block writers). The copy appears at ``target`` only once complete."""
    if not database.is_file():
        raise BackupRefused(f"there is no database at {database}")
    if target.exists():
        raise BackupRefused(f"{target} exists; choose a new file")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with closing(sqlite3.connect(database, timeout=30)) as source, closing(sqlite3.connect(partial)) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    revision = schema_revision(partial)
    os.replace(partial, target)
    return f"backup: {database} -> {target} ({target.stat().st_size} bytes, schema {revision})"


def restore(source: Path, database: Path, *, force: bool) -> str:
    """Write the backup at ``source`` over ``database``, holding an exclusive lock so that no running
    server can have it open meanwhile."""
    revision = schema_revision(source)
    if database.exists() and database.resolve() == source.resolve():
        raise BackupRefused("the backup is the configured database itself")
    if database.exists() and not force:
        raise BackupRefused(f"{database} exists; pass --force to replace it (stop the server first)")
    database.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(database, timeout=0)) as target:
        _lock_exclusively(target, database)
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup_file:
            backup_file.backup(target)
    return f"restore: {source} -> {database} (schema {revision})"


def _lock_exclusively(connection: sqlite3.Connection, database: Path) -> None:
    # In exclusive locking mode the lock taken here is kept until the connection closes; it cannot be
    # had while any other process (a server, even an idle one) has the file open in WAL mode.
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")
    try:
        connection.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError as exc:
        raise BackupRefused(f"another process has {database} open; stop the server first") from exc
    connection.execute("ROLLBACK")


def schema_revision(path: Path) -> str:
    """The Alembic revision of a DCP database file; refuses anything else, a damaged file, or a schema
    newer than this DCP knows."""
    if not path.is_file():
        raise BackupRefused(f"there is no file at {path}")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            checked = connection.execute("PRAGMA integrity_check").fetchone()
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{path} is not a DCP database ({exc})") from exc
    if checked != ("ok",):
        raise BackupRefused(f"{path} is damaged: {checked[0] if checked else 'no answer'}")
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config("")).walk_revisions()}
    if len(rows) != 1 or rows[0][0] not in known:
        raise BackupRefused(f"{path} has schema {rows or 'none'}, which this DCP does not know")
    return str(rows[0][0])


def postgres_advice(command: str, path: Path, database_url: str) -> str:
    """The pg_dump or pg_restore command for the configured database (password left out)."""
    given = make_url(database_url)
    url = URL.create(
        "postgresql",
        username=given.username,
        host=given.host,
        port=given.port,
        database=given.database,
        query=given.query,
    )
    target = shlex.quote(url.render_as_string(hide_password=False))
    file = shlex.quote(str(path))
    if command == "backup":
        tool = f"pg_dump --format=custom --file={file} {target}"
    else:
        tool = f"pg_restore --clean --if-exists --no-owner --dbname={target} {file}\n  dcp admin check-ledger"
    return (
        f"dcp admin {command}: this server uses PostgreSQL, which DCP backs up with PostgreSQL's own tools.\n"
        f"Run:\n  {tool}\n"
        "(the password comes from PGPASSWORD or ~/.pgpass; see docs/operations.md, Backups)"
    )
