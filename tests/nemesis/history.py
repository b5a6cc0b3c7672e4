"""The history of a nemesis run: one JSON object per line, appended by every
worker thread as things happen.

Why JSON lines and a flush per event: a run that is killed (or a broker bug
that wedges the test) still leaves every event up to that moment on disk,
and the checker and a human can both read the file. The file path and the
run's seed are printed at the start of the run so a failure can be replayed.

Event kinds (field `type`; `t` is seconds since the run started, monotonic;
`process` names the worker):

    send        a produce attempt's outcome, field `outcome`:
                  "ok"      acked, with `partition` and `offset`
                  "fail"    definitely not written (an error the broker
                            gives before appending, see workload.py)
                  "unknown" may or may not be written (timeout, lost
                            connection, purge at shutdown)
                `value` (unique per run), `topic`, `txn` (transaction id or
                null)
    txn         a transaction's end, `txn`, `phase`: "commit_invoke",
                "commit_ok", "abort_ok", "unknown" (commit raised: outcome
                unknown)
    assign      a consumer's assignment changed or it seeked: starts a new
                `epoch` for the monotonic-poll check
    poll        `records`: [[topic, partition, offset, value], ...] from one
                consume() call, `epoch`, `isolation` ("read_committed" or
                "read_uncommitted"), `final` true for the final read
    final_read  the final read finished; `end_offsets` {"topic/p": offset}
    nemesis     a fault started or ended: `op`, `node`, `phase`
    error       a worker saw an error worth keeping (`error`)

Values are strings; records with a null value are written as null.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator


class History:
    """Thread-safe append-only JSON-lines writer. Events are also kept in
    memory so a run can check itself without reading the file back."""

    def __init__(self, path: Path, seed: int) -> None:
        self.path = Path(path)
        self.seed = seed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.events: list[dict] = []
        self.append({"type": "run", "seed": seed, "wall_clock_s": time.time()})

    def now(self) -> float:
        return round(time.monotonic() - self._started, 6)

    def append(self, event: dict) -> dict:
        event = {"t": self.now(), **event}
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            self.events.append(event)
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()
        return event

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read(path: Path) -> list[dict]:
    """Every event of a history file; a torn last line (the writer was
    killed mid-write) is ignored, any other bad line is an error."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    events = []
    for i, line in enumerate(lines):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise
    return events


def write(path: Path, events: Iterable[dict]) -> None:
    """Writes events as a history file (for synthetic histories)."""
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")


def of_type(events: Iterable[dict], kind: str) -> Iterator[dict]:
    return (e for e in events if e.get("type") == kind)
