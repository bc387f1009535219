"""Resumable table rows: finished items are written as they finish, so a run killed at any point (SIGKILL
included) starts again without redoing them.

A row's progress lives in a folder of JSON-lines files, one per process and run (torchrun ranks never share a
file; a restart with another number of ranks still sees every finished item). The first line of a file is the
row's key (restorer, model, data); files with another key are ignored. Each further line is one finished item's
record; lines are flushed and fsynced per batch, and a torn last line left by a kill is skipped.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path


def _canonical(key) -> str:
    return json.dumps(key, sort_keys=True)


class ProgressLog:
    """Finished items (``id`` -> record) of one row with key ``key`` under ``folder``."""

    def __init__(self, folder: str | Path, key, rank: int = 0):
        self.folder, self.key, self.rank = Path(folder), _canonical(key), rank
        self._file = None

    def done(self) -> dict[str, dict]:
        """Every finished item recorded by any process under this key."""
        records = {}
        for path in sorted(self.folder.glob("*.jsonl")) if self.folder.is_dir() else []:
            lines = path.read_text(encoding="utf-8").split("\n")
            if not lines or lines[0] != self.key:
                continue
            for line in lines[1:]:
                try:
                    record = json.loads(line)
                except ValueError:  # torn by a kill, or the empty tail after the last newline
                    continue
                records[record["id"]] = record
        return records

    def append(self, records: list[dict]) -> None:
        """Record finished items (each with an ``id``) durably."""
        if not records:
            return
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"rank{self.rank}-pid{os.getpid()}-{time.time_ns()}.jsonl"
            self._file = open(self.folder / name, "w", encoding="utf-8")
            self._file.write(self.key + "\n")
        self._file.write("".join(json.dumps(r) + "\n" for r in records))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def clear(self) -> None:
        """Remove the folder once the row's final files are written."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
