"""The training input: each worker reads its part of a split's shards in a planned order.

Mid-epoch resume must see exactly the samples an uninterrupted run would have seen, in the
same order, which Ray Data's streaming split cannot promise (blocks go to whichever worker
asks first, and an iterator cannot be resumed). So a worker reads the manifest's Parquet
shards itself, following a plan that is a pure function of (files, seed, epoch, world size):

1. The split's rows are laid end to end in a shuffled order of the files (seeded by seed and
   epoch), then cut into ``world_size`` equal, contiguous parts; rank r reads part r, so it
   opens only the files its part overlaps. Each part is cut to a whole number of batches,
   the same number on every rank (collectives and ``ray.train.report`` need that): at most
   ``world_size * batch_size - 1`` rows of an epoch are left out, different ones each epoch.
2. Within a part, rows are shuffled in windows of ``shuffle_rows`` consecutive rows (a
   shuffle buffer that never holds more than one window).
3. A resumed worker is given its cursor, the number of batches it already consumed in the
   epoch; it skips their rows without reading the windows that hold only skipped rows.

Evaluation reads a rank's part in file order with no shuffle and nothing left out
(``drop_last=False``, parts may differ by a few rows).

Reading happens in a background thread that keeps up to ``prefetch`` batches ready
(decompression and the copy out of Arrow release the GIL), so the step loop only waits when
the reader falls behind; the wait is what ``data_wait_fraction`` measures.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Batch = dict[str, np.ndarray]


@dataclass(frozen=True)
class ShardFile:
    path: str
    rows: int


@dataclass(frozen=True)
class Plan:
    """One rank's rows of one epoch: ``rows[i] = (file index, row in file)``, batched."""

    rows: np.ndarray  # (n, 2) int64, in reading order
    batch_size: int
    num_batches: int

    def batch_rows(self, index: int) -> np.ndarray:
        """(<= batch_size, 2) rows of batch ``index``."""
        return self.rows[index * self.batch_size : (index + 1) * self.batch_size]


def plan_epoch(
    files: Sequence[ShardFile],
    seed: int,
    epoch: int,
    rank: int,
    world_size: int,
    batch_size: int,
    shuffle: bool = True,
    shuffle_rows: int = 1024,
    drop_last: bool = True,
) -> Plan:
    """Which rows ``rank`` reads in ``epoch``, in order (see the module docstring)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
    if batch_size < 1 or shuffle_rows < 1:
        raise ValueError(f"batch_size={batch_size} and shuffle_rows={shuffle_rows} must be >= 1")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(files)) if shuffle else np.arange(len(files))
    all_rows = np.concatenate(
        [np.stack([np.full(files[i].rows, i), np.arange(files[i].rows)], axis=1) for i in order]
        or [np.zeros((0, 2), dtype=np.int64)]
    ).astype(np.int64)  # (N, 2)
    total = len(all_rows)
    if drop_last:
        per_rank = (total // world_size) // batch_size * batch_size
        start = rank * per_rank
        part = all_rows[start : start + per_rank]
        num_batches = per_rank // batch_size
    else:
        bounds = np.linspace(0, total, world_size + 1).astype(int)
        part = all_rows[bounds[rank] : bounds[rank + 1]]
        num_batches = -(-len(part) // batch_size)
    if shuffle:
        window_rng = np.random.default_rng([seed, epoch, rank])
        part = part.copy()
        for begin in range(0, len(part), shuffle_rows):
            window = part[begin : begin + shuffle_rows]
            part[begin : begin + shuffle_rows] = window[window_rng.permutation(len(window))]
    return Plan(rows=part, batch_size=batch_size, num_batches=num_batches)


def column_to_numpy(column: Any) -> np.ndarray:
    """An Arrow column -> numpy: fixed-shape tensors as (rows, *shape), scalars as (rows,)."""
    import pyarrow as pa

    from preprocessing.parquet.shards import tensor_from_column

    if isinstance(column.type, pa.FixedShapeTensorType):
        return tensor_from_column(column)
    return column.to_numpy()


class ShardReader:
    """Reads planned rows from the split's Parquet files: one file's columns at a time."""

    def __init__(self, root: Path, files: Sequence[ShardFile], columns: Sequence[str]) -> None:
        self.root = Path(root)
        self.files = list(files)
        self.columns = list(columns)
        self._cached: tuple[int, Batch] | None = None

    def _file(self, index: int) -> Batch:
        """All rows of one file as numpy arrays (tensor columns as (rows, *shape))."""
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        import pyarrow.parquet as pq

        path = self.root / self.files[index].path
        table = pq.read_table(path, columns=self.columns)
        arrays = {name: column_to_numpy(table.column(name)) for name in self.columns}
        self._cached = (index, arrays)
        return arrays

    def read(self, rows: np.ndarray) -> Batch:
        """(n, 2) (file, row) pairs -> {column: (n, ...)} in the given order."""
        out: dict[str, list[np.ndarray]] = {name: [] for name in self.columns}
        positions: list[np.ndarray] = []
        for file_index in dict.fromkeys(rows[:, 0].tolist()):  # files in order of first use
            picked = np.nonzero(rows[:, 0] == file_index)[0]
            arrays = self._file(int(file_index))
            for name in self.columns:
                out[name].append(arrays[name][rows[picked, 1]])
            positions.append(picked)
        where = np.argsort(np.concatenate(positions), kind="stable")
        return {name: np.concatenate(parts)[where] for name, parts in out.items()}


class Prefetcher:
    """Iterates ``make(i)`` for i in ``indices`` from a background thread, ``depth`` ahead.

    ``wait_seconds`` accumulates the time the consumer spent waiting for the next item.
    An exception in the thread is raised in the consumer.
    """

    _DONE = object()

    def __init__(self, make: Callable[[int], Any], indices: Sequence[int], depth: int = 2) -> None:
        import time

        self._clock = time.perf_counter
        self.wait_seconds = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(make, list(indices)), name="shard-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, make: Callable[[int], Any], indices: list[int]) -> None:
        try:
            for i in indices:
                if self._stop.is_set():
                    return
                self._put(make(i))
            self._put(self._DONE)
        except BaseException as exc:  # handed to the consumer
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Any]:
        while True:
            started = self._clock()
            item = self._queue.get()
            self.wait_seconds += self._clock() - started
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def batches(
    reader: ShardReader,
    plan: Plan,
    start: int = 0,
    transform: Callable[[int, Batch], Any] | None = None,
    prefetch: int = 2,
) -> Prefetcher:
    """Batches ``start..plan.num_batches - 1`` of ``plan``, read (and ``transform(i, batch)``
    applied) in a background thread."""

    def make(index: int) -> Any:
        batch = reader.read(plan.batch_rows(index))
        return (index, transform(index, batch) if transform else batch)

    return Prefetcher(make, range(start, plan.num_batches), prefetch)
