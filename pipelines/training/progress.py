"""Training progress from rank 0 to the driver's progress bar, through a small JSON file.

Ray Train reports only at checkpoints, and a worker's own progress bar would need its log
lines forwarded to the terminal (which ``pipelines.console`` sends to the log file). So rank 0
rewrites ``progress.json`` in the run's storage folder after every optimizer step (an atomic
rename), and the driver polls it from a thread while ``trainer.fit()`` runs.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


class ProgressFile:
    """Rank 0's side: ``write(step, epoch, loss)``."""

    def __init__(self, path: Path, total: int) -> None:
        self.path = path
        self.total = total

    def write(self, step: int, epoch: int, loss: float) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(
            json.dumps({"step": step, "total": self.total, "epoch": epoch, "loss": loss})
        )
        os.replace(tmp, self.path)


def read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


class ProgressWatcher:
    """The driver's side: a thread that moves ``progress`` (a ``console.Progress``) along."""

    def __init__(self, path: Path, progress: Any, interval: float = 0.5) -> None:
        self.path = path
        self.progress = progress
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="train-progress", daemon=True)

    def __enter__(self) -> ProgressWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()

    def poll(self) -> None:
        state = read(self.path)
        if state is None:
            return
        self.progress.describe(f"train epoch {state['epoch']} (loss {state['loss']:.4f})")
        self.progress.set(int(state["step"]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
