"""The append-only audit log of issued tasks (SPEC §8): one JSON line per issue, flushed and
synced to disk before ``next_task`` returns, so no issued task is lost if the process dies."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pajson

from .errors import InputError, Problem

FIELDS = ("time", "responder", "task", "casualty", "hospital", "objective", "alternative_objective")


class AuditLog:
    """Appends issue records to ``path`` (created if missing; existing lines are kept)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:  # bad input (a folder, no such place), not a crash
            raise InputError(Problem(str(self.path), f"cannot write the audit log: {exc.strerror or exc}")) from None
        self._lock = threading.Lock()  # issues are logged outside the planner's lock

    def write(self, record: dict) -> None:
        line = json.dumps({k: record.get(k) for k in FIELDS}) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_audit(path: str | os.PathLike) -> pa.Table:
    """The audit log as a pyarrow table (one row per issued task)."""
    schema = pa.schema([("time", pa.float64()), ("responder", pa.string()), ("task", pa.string()),
                        ("casualty", pa.string()), ("hospital", pa.string()), ("objective", pa.float64()),
                        ("alternative_objective", pa.float64())])
    if Path(path).stat().st_size == 0:
        return schema.empty_table()
    return pajson.read_json(path, parse_options=pajson.ParseOptions(explicit_schema=schema))
