"""Job state on disk, so a restarted daemon reports or cleans up what it was doing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class JobStore:
    """One JSON file per job: its spec while running, then the result until the server acknowledges it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, job_id: str) -> Path:
        return self.directory / f"{Path(job_id).name}.json"

    def save(self, job_id: str, record: dict[str, Any]) -> None:
        temporary = self._path(job_id).with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, self._path(job_id))  # atomic: a crash leaves the old or the new record

    def drop(self, job_id: str) -> None:
        self._path(job_id).unlink(missing_ok=True)

    def all(self) -> list[dict[str, Any]]:
        records = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                records.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
        return records
