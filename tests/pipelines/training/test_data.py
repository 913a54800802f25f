"""The planned training input: disjoint equal parts, seeded shuffles, exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipelines.training.data import ShardFile, ShardReader, batches, plan_epoch
from preprocessing.parquet.shards import tensor_column, write_table_atomic

FILES = [ShardFile(f"part-{i}.parquet", rows) for i, rows in enumerate([7, 12, 5, 9, 11])]
TOTAL = sum(f.rows for f in FILES)


def keys(plan) -> list[tuple[int, int]]:
    return [tuple(r) for r in plan.rows.tolist()]


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_read_disjoint_equal_whole_batches(world_size):
    plans = [plan_epoch(FILES, 0, 0, r, world_size, batch_size=4) for r in range(world_size)]
    counts = {p.num_batches for p in plans}
    assert len(counts) == 1  # every rank steps equally often
    seen = [k for p in plans for k in keys(p)]
    assert len(seen) == len(set(seen))  # no row twice
    assert all(len(p.rows) == p.num_batches * 4 for p in plans)
    assert TOTAL - len(seen) < world_size * 4  # at most one batch per rank left out
    every = {(i, r) for i, f in enumerate(FILES) for r in range(f.rows)}
    assert set(seen) <= every


def test_the_plan_is_a_function_of_seed_and_epoch():
    a = plan_epoch(FILES, seed=3, epoch=1, rank=0, world_size=2, batch_size=4)
    again = plan_epoch(FILES, seed=3, epoch=1, rank=0, world_size=2, batch_size=4)
    other_epoch = plan_epoch(FILES, seed=3, epoch=2, rank=0, world_size=2, batch_size=4)
    np.testing.assert_array_equal(a.rows, again.rows)
    assert keys(a) != keys(other_epoch)


def test_evaluation_plan_keeps_every_row_in_file_order():
    plans = [
        plan_epoch(FILES, 0, 0, r, 2, batch_size=4, shuffle=False, drop_last=False)
        for r in range(2)
    ]
    seen = [k for p in plans for k in keys(p)]
    assert seen == [(i, r) for i, f in enumerate(FILES) for r in range(f.rows)]
    assert [len(p.rows) for p in plans] == [22, 22]
    assert [p.num_batches for p in plans] == [6, 6]  # the last batch of each is partial


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match=r"rank=2 must be in \[0, world_size=2\)"):
        plan_epoch(FILES, 0, 0, 2, 2, 4)
    with pytest.raises(ValueError, match="batch_size=0"):
        plan_epoch(FILES, 0, 0, 0, 2, 0)


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    """The five files as real shards: an (i, r) image tensor and a label per row."""
    for i, f in enumerate(FILES):
        images = np.zeros((f.rows, 2, 3, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = i
        images[:, 0, 0, 1] = np.arange(f.rows)
        table = pa.table(
            {
                "image": tensor_column(images),
                "label": pa.array(np.arange(f.rows) + 100 * i, pa.int64()),
            }
        )
        write_table_atomic(table, tmp_path / f.path)
    return tmp_path


def test_reader_returns_the_planned_rows_in_order(shards):
    plan = plan_epoch(FILES, 0, 0, 1, 2, batch_size=4)
    reader = ShardReader(shards, FILES, ["image", "label"])
    got = list(batches(reader, plan, prefetch=2))
    assert [i for i, _ in got] == list(range(plan.num_batches))
    for index, batch in got:
        rows = plan.batch_rows(index)
        np.testing.assert_array_equal(batch["image"][:, 0, 0, 0], rows[:, 0])
        np.testing.assert_array_equal(batch["image"][:, 0, 0, 1], rows[:, 1])
        np.testing.assert_array_equal(batch["label"], rows[:, 0] * 100 + rows[:, 1])
        assert batch["image"].shape == (4, 2, 3, 3) and batch["image"].dtype == np.uint8


def test_a_resumed_reader_continues_with_the_same_batches(shards):
    plan = plan_epoch(FILES, 5, 2, 0, 2, batch_size=3)
    reader = ShardReader(shards, FILES, ["label"])
    whole = [b["label"].tolist() for _, b in batches(reader, plan)]
    resumed = [
        b["label"].tolist()
        for _, b in batches(ShardReader(shards, FILES, ["label"]), plan, start=2)
    ]
    assert resumed == whole[2:]


def test_a_failing_read_raises_in_the_consumer(shards):
    plan = plan_epoch(FILES, 0, 0, 0, 1, batch_size=4)
    reader = ShardReader(shards, FILES, ["no_such_column"])
    with pytest.raises(Exception, match="no_such_column"):
        list(batches(reader, plan))
