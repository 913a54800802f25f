"""What the user sees: step banners, one progress bar per long step, the summary.

Ray, Ray Data, Ray Train, DeepSpeed and MLflow write a great deal to stdout and stderr: their
startup messages, per-operator progress dumps, worker log lines, warnings. ``Console.start``
sends file descriptors 1 and 2 of this process, and so of every process it starts (the local
Ray cluster, whose workers' lines Ray forwards here), to a log file, and keeps the terminal
for this module's own output: banners (``step``), messages (``say``), progress bars
(``progress``) and the summary. The log file is named at the start and in the summary.
``--verbose`` leaves stdout and stderr alone, so everything shows as it comes.

Progress bars go to stderr, like tqdm's, so stdout holds only results (``preprocess``'s JSON
summary can be piped); they are drawn only on a terminal, and in a pipe each bar prints one
line when it ends, so a log of the run stays short.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


class Console:
    """The terminal of a command, and the log file the engines write to."""

    def __init__(self) -> None:
        self._stream: IO[str] | None = None  # the terminal, once fd 1 goes to the log
        self._errors: IO[str] | None = None
        self.log_path: Path | None = None
        self._saved: tuple[int, int] | None = None
        self._plan: tuple[Path, str] | None = None  # (log dir, command), set by configure

    @property
    def stream(self) -> IO[str]:
        """Where the user's output goes: the terminal (``sys.stdout`` until ``start``)."""
        return self._stream or sys.stdout

    @property
    def errors(self) -> IO[str]:
        return self._errors or sys.stderr

    @property
    def interactive(self) -> bool:
        """Whether progress bars are drawn: their stream (stderr) is a terminal."""
        return bool(getattr(self.errors, "isatty", lambda: False)())

    def configure(self, log_dir: Path, command: str, verbose: bool = False) -> None:
        """Where ``start`` will send the engines' output (nowhere if ``verbose``)."""
        self._plan = None if verbose else (log_dir, command)

    def start(self) -> None:
        """Route fd 1 and 2 to ``<log_dir>/<command>-<time>.log`` (as configured; called when
        the engines start, so errors before that reach the terminal as usual)."""
        if self._plan is None or self._saved is not None or not _writes_to_fd_1():
            return
        log_dir, command = self._plan
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.log_path = (log_dir / f"{command}-{stamp}.log").resolve()
        sys.stdout.flush()
        sys.stderr.flush()
        terminal = os.dup(1)
        self._saved = (terminal, os.dup(2))
        self._stream = os.fdopen(os.dup(terminal), "w", buffering=1)
        self._errors = os.fdopen(os.dup(self._saved[1]), "w", buffering=1)
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        print(f"engine logs (Ray, DeepSpeed, MLflow): {self.log_path}", file=self.errors)

    def stop(self) -> None:
        """Give fd 1 and 2 back to the terminal."""
        if self._saved is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = self._saved
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        self._saved = None
        for stream in (self._stream, self._errors):
            if stream is not None:
                stream.close()
        self._stream = self._errors = None

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def step(self, n: int, total: int, what: str) -> None:
        self.say(f"\n=== [{n}/{total}] {what} ===")

    @contextmanager
    def progress(self, total: int | None, desc: str, unit: str = "it") -> Iterator[Progress]:
        """A tqdm bar on the terminal (none in a pipe: one line when done)."""
        from tqdm import tqdm

        bar = tqdm(
            total=total,
            desc=desc,
            unit=unit,
            file=self.errors,
            disable=not self.interactive,
            dynamic_ncols=True,
        )
        progress = Progress(bar)
        try:
            yield progress
        finally:
            bar.close()
            if not self.interactive:
                planned = bar.total
                done = f"{progress.n}/{planned}" if planned else str(progress.n)
                print(f"{desc}: {done} {unit}", file=self.errors, flush=True)


class Progress:
    """A bar's handle: ``update(n)``, ``set(n)``, ``describe(text)``; counts even when the bar
    is not drawn."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.set(self.n + n)

    def set(self, n: int) -> None:
        if n > self.n:
            self.bar.update(n - self.n)
            self.n = n

    def describe(self, text: str) -> None:
        self.bar.set_description(text, refresh=False)


def _writes_to_fd_1() -> bool:
    """Whether ``sys.stdout`` is this process's file descriptor 1 (not an in-memory capture,
    which the engines' output would not reach anyway)."""
    try:
        return bool(sys.stdout.fileno() == 1)
    except (AttributeError, OSError, ValueError):
        return False


_CONSOLE = Console()


def console() -> Console:
    """The process's console (one per command)."""
    return _CONSOLE
