"""TableBuilder: rows appended one by one become a table; tensor values are copied at once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from preprocessing.modality import TableBuilder, rows_to_table
from preprocessing.shards import tensor_from_column

SCHEMA = pa.schema([("image", pa.fixed_shape_tensor(pa.uint8(), [2, 3])), ("label", pa.int64())])


def test_rows_become_a_table_of_the_rows_appended():
    builder = TableBuilder(SCHEMA, capacity=4)
    images = [np.full((2, 3), i, np.uint8) for i in range(3)]
    for i, image in enumerate(images):
        builder.append({"image": image, "label": i})
        image[:] = 99  # the decoder's buffer may be reused: the builder holds a copy
    table = builder.table()
    assert table.schema == SCHEMA and table.num_rows == 3
    got = tensor_from_column(table["image"])
    np.testing.assert_array_equal(
        got, np.arange(3, dtype=np.uint8)[:, None, None] * np.ones((2, 3))
    )
    assert table["label"].to_pylist() == [0, 1, 2]


def test_a_view_is_copied_and_rows_to_table_agrees():
    big = np.arange(40, dtype=np.uint8).reshape(4, 10)
    rows = [{"image": big[1:3, 2:5], "label": 7}]  # a strided crop
    table = rows_to_table(rows, SCHEMA)
    np.testing.assert_array_equal(tensor_from_column(table["image"])[0], big[1:3, 2:5])


def test_bad_rows_and_capacity_are_named():
    builder = TableBuilder(SCHEMA, capacity=1)
    with pytest.raises(TypeError, match=r"column 'image': decoder returned float32 \(2, 3\)"):
        builder.append({"image": np.zeros((2, 3), np.float32), "label": 0})
    with pytest.raises(TypeError, match=r"uint8 \(3, 2\), schema says uint8 \(2, 3\)"):
        builder.append({"image": np.zeros((3, 2), np.uint8), "label": 0})
    with pytest.raises(ValueError, match=r"no value for column\(s\) \['label'\]"):
        builder.append({"image": np.zeros((2, 3), np.uint8)})
    assert builder.num_rows == 0  # a rejected row leaves nothing behind
    with pytest.raises(ValueError, match="no rows"):
        builder.table()
    builder.append({"image": np.zeros((2, 3), np.uint8), "label": 0})
    with pytest.raises(ValueError, match="full: capacity 1"):
        builder.append({"image": np.zeros((2, 3), np.uint8), "label": 1})
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        TableBuilder(SCHEMA, capacity=0)
