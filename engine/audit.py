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
    """Appends issue records to ``path`` (created if missing; existing lines are kept, unless
    ``fresh``: a replay's log is its own). A last line cut short by a process that died writing
    it is dropped, so the next record does not run on from it."""

    def __init__(self, path: str | os.PathLike, fresh: bool = False):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keep = _whole_lines(self.path) if not fresh and self.path.is_file() else 0
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
            self._fd = os.open(self.path, flags, 0o644)
            if not fresh:
                os.ftruncate(self._fd, keep)
        except OSError as exc:  # bad input (a folder, no such place), not a crash
            raise InputError(Problem(str(self.path), f"cannot write the audit log: {exc.strerror or exc}")) from None
        self._lock = threading.Lock()  # issues are logged outside the planner's lock

    def write(self, record: dict) -> None:
        """Append ``record`` as one line and sync it to disk; raises ``OSError`` (a full disk)
        with the file as it was, not half a line that the next record would run on from."""
        line = (json.dumps({k: record.get(k) for k in FIELDS}) + "\n").encode("utf-8")
        with self._lock:
            size = os.fstat(self._fd).st_size
            try:
                done = 0
                while done < len(line):
                    done += os.write(self._fd, line[done:])
                os.fsync(self._fd)
            except OSError:
                try:
                    os.ftruncate(self._fd, size)
                except OSError:
                    pass
                raise

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def read_audit(path: str | os.PathLike) -> pa.Table:
    """The audit log as a pyarrow table (one row per issued task)."""
    schema = pa.schema([("time", pa.float64()), ("responder", pa.string()), ("task", pa.string()),
                        ("casualty", pa.string()), ("hospital", pa.string()), ("objective", pa.float64()),
                        ("alternative_objective", pa.float64())])
    end = _whole_lines(path)
    if end == 0:
        return schema.empty_table()
    with open(path, "rb") as f:
        data = f.read(end)
    return pajson.read_json(pa.BufferReader(data), parse_options=pajson.ParseOptions(explicit_schema=schema))


def _whole_lines(path: str | os.PathLike, tail: int = 1 << 16) -> int:
    """The length of ``path`` up to its last newline. Beyond it lies at most a record the process
    died writing: not synced, so ``next_task`` never returned it and no crew was told. A file
    whose last line is not the start of a record is not an audit log: refused, not cut."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(size - tail, 0)
        f.seek(start)
        data = f.read()
    cut = data.rfind(b"\n") + 1
    torn = data[cut:]
    if (cut == 0 and start > 0) or not (torn.startswith(_RECORD_START) or _RECORD_START.startswith(torn)):
        raise InputError(Problem(str(path), "not an audit log: its last line is not a record, nor the start of one"))
    return start + cut


#: how every record starts (``AuditLog.write``: the fields in ``FIELDS`` order)
_RECORD_START = b'{"' + FIELDS[0].encode() + b'": '
