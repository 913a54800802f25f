"""The tensor-column Parquet writer: the file pyarrow would write, read back by pyarrow,
Ray Data and DuckDB's independent reader."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preprocessing.parquet.shards import tensor_column, tensor_from_column
from preprocessing.parquet.tensor_pages import PAGE_BYTES
from preprocessing.parquet.tensor_parquet import ShardWriter, parquet_write_options, write_table


def _values(rng: np.random.Generator, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    if np.issubdtype(dtype, np.floating):
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def _table(tensor: np.ndarray) -> pa.Table:
    n = len(tensor)
    return pa.table(
        {
            "label": pa.array(np.arange(n)),
            "tensor": tensor_column(tensor),
            "source": pa.array([f"s{i}" if i % 3 else None for i in range(n)]),
            "times": pa.array([[0.5 * j for j in range(i % 4)] for i in range(n)]),
            "flag": pa.array([i % 2 == 0 for i in range(n)]),
        }
    )


def _ours_and_pyarrows(table: pa.Table) -> tuple[bytes, bytes]:
    ours, theirs = io.BytesIO(), io.BytesIO()
    write_table(table, ours)
    pq.write_table(table, theirs, **parquet_write_options(table.schema))
    return ours.getvalue(), theirs.getvalue()


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.float32, np.float64]
)
@pytest.mark.parametrize("shape", [(5, 4, 4, 3), (7, 1), (3, 70_000)])
def test_round_trips_as_pyarrow_writes_it(dtype, shape):
    table = _table(_values(np.random.default_rng(0), dtype, shape))
    ours, theirs = _ours_and_pyarrows(table)
    back = pq.read_table(io.BytesIO(ours))
    assert back.equals(table)  # values, nulls, the extension type and its shape
    assert back.schema == pq.read_table(io.BytesIO(theirs)).schema
    mine, ref = pq.read_metadata(io.BytesIO(ours)), pq.read_metadata(io.BytesIO(theirs))
    assert mine.metadata == ref.metadata  # ARROW:schema
    assert mine.schema.equals(ref.schema)  # the Parquet schema
    # BYTE_STREAM_SPLIT + zstd like pyarrow's: the same size but for page boundaries.
    assert abs(len(ours) - len(theirs)) < 0.01 * len(theirs) + 512


def test_tensor_chunk_metadata():
    table = _table(_values(np.random.default_rng(1), np.uint8, (6, 8, 8, 3)))
    ours, _ = _ours_and_pyarrows(table)
    meta = pq.read_metadata(io.BytesIO(ours))
    group = meta.row_group(0)
    assert meta.num_rows == 6 and meta.num_row_groups == 1
    paths = [group.column(i).path_in_schema for i in range(group.num_columns)]
    assert paths == ["label", "tensor.list.element", "source", "times.list.element", "flag"]
    col = group.column(1)
    assert col.physical_type == "INT32" and col.compression == "ZSTD"
    assert set(col.encodings) == {"RLE", "BYTE_STREAM_SPLIT"}
    assert col.num_values == 6 * 8 * 8 * 3 and not col.is_stats_set
    assert group.num_rows == 6
    assert group.total_byte_size == sum(
        group.column(i).total_uncompressed_size for i in range(group.num_columns)
    )


def test_many_rows_span_several_pages_and_chunked_sliced_columns_are_whole_rows():
    rng = np.random.default_rng(2)
    cell = 300
    rows = 3 * PAGE_BYTES // (4 * cell) + 17  # uint8 widened to INT32: 4 bytes a value
    part = _table(_values(rng, np.uint8, (rows, cell)))
    table = pa.concat_tables([part, part.slice(5, 40)])  # two chunks, one sliced
    assert table["tensor"].num_chunks == 2
    ours, _ = _ours_and_pyarrows(table)
    back = pq.read_table(io.BytesIO(ours))
    np.testing.assert_array_equal(
        tensor_from_column(back["tensor"]), tensor_from_column(table["tensor"])
    )
    assert back.equals(table.combine_chunks())


def test_tables_it_does_not_cover_are_written_by_pyarrow():
    rng = np.random.default_rng(3)
    half = pa.table({"tensor": tensor_column(_values(rng, np.float16, (3, 4))), "k": [1, 2, 3]})
    cells = tensor_column(_values(rng, np.uint8, (3, 4)))
    with_null = pa.ExtensionArray.from_storage(
        cells.type, pa.array([[1, 2, 3, 4], None, [5, 6, 7, 8]], cells.type.storage_type)
    )
    for table in (half, pa.table({"tensor": with_null}), _table(np.zeros((0, 4), np.uint8))):
        ours, theirs = _ours_and_pyarrows(table)
        assert ours == theirs  # (pyarrow 25 cannot read a null fixed-size list back)


def test_duckdb_reads_the_same_values(tmp_path):
    import duckdb  # a dev dependency: an independent Parquet reader

    rng = np.random.default_rng(4)
    table = _table(_values(rng, np.uint8, (4, 6, 5, 3))).append_column(
        "audio", tensor_column(_values(rng, np.float32, (4, 33)))
    )
    write_table(table, tmp_path / "t.parquet")
    got = duckdb.sql(
        f"SELECT label, tensor, source, times, flag, audio FROM '{tmp_path / 't.parquet'}' "
        "ORDER BY label"
    ).fetchall()
    pixels = tensor_from_column(table["tensor"]).reshape(4, -1)
    audio = tensor_from_column(table["audio"])
    for i, (label, tensor, source, times, flag, sound) in enumerate(got):
        assert label == i and source == table["source"][i].as_py()
        assert times == table["times"][i].as_py() and flag == table["flag"][i].as_py()
        np.testing.assert_array_equal(np.array(tensor, np.uint8), pixels[i])
        np.testing.assert_array_equal(np.array(sound, np.float32), audio[i])


def test_ray_data_reads_numpy_arrays_of_the_shape(ray_cluster, tmp_path):
    import ray

    tensor = _values(np.random.default_rng(5), np.uint8, (10, 6, 5, 3))
    write_table(_table(tensor), tmp_path / "t.parquet")
    rows = ray.data.read_parquet(str(tmp_path)).take_all()
    got = np.stack([r["tensor"] for r in sorted(rows, key=lambda r: r["label"])])
    assert got.dtype == np.uint8 and got.shape == (10, 6, 5, 3)
    np.testing.assert_array_equal(got, tensor)


def test_shard_writer_rows_make_the_file_write_table_makes(tmp_path):
    rng = np.random.default_rng(6)
    table = _table(_values(rng, np.uint8, (9, 4, 4, 3))).append_column(
        "half",
        tensor_column(_values(rng, np.float16, (9, 2))),  # written by pyarrow
    )
    writer = ShardWriter(table.schema)
    for row in table.to_pylist():
        row["tensor"] = np.asarray(row["tensor"], np.uint8).reshape(4, 4, 3)
        row["half"] = np.asarray(row["half"], np.float16)
        writer.append(row)
    assert writer.num_rows == 9
    writer.write(tmp_path / "rows.parquet")
    write_table(table, tmp_path / "table.parquet")
    assert (tmp_path / "rows.parquet").read_bytes() == (tmp_path / "table.parquet").read_bytes()
    assert pq.read_table(tmp_path / "rows.parquet").equals(table)


def test_shard_writer_copies_views_and_keeps_no_reference():
    schema = pa.schema([("image", pa.fixed_shape_tensor(pa.uint8(), [2, 3])), ("k", pa.int64())])
    writer = ShardWriter(schema)
    big = np.arange(40, dtype=np.uint8).reshape(4, 10)
    writer.append({"image": big[1:3, 2:5], "k": 0})  # a strided crop
    big[:] = 0  # the decoder may reuse its buffer at once
    buf = io.BytesIO()
    writer.write(buf)
    got = tensor_from_column(pq.read_table(io.BytesIO(buf.getvalue()))["image"])
    np.testing.assert_array_equal(got[0], np.arange(40, dtype=np.uint8).reshape(4, 10)[1:3, 2:5])


def test_shard_writer_names_bad_rows():
    schema = pa.schema([("image", pa.fixed_shape_tensor(pa.uint8(), [2, 3])), ("k", pa.int64())])
    writer = ShardWriter(schema)
    with pytest.raises(TypeError, match=r"column 'image': decoder returned float32 \(2, 3\)"):
        writer.append({"image": np.zeros((2, 3), np.float32), "k": 0})
    with pytest.raises(TypeError, match=r"uint8 \(3, 2\), schema says uint8 \(2, 3\)"):
        writer.append({"image": np.zeros((3, 2), np.uint8), "k": 0})
    with pytest.raises(ValueError, match=r"no value for column\(s\) \['k'\]"):
        writer.append({"image": np.zeros((2, 3), np.uint8)})
    assert writer.num_rows == 0  # a rejected row leaves nothing behind
    with pytest.raises(ValueError, match="no rows to write"):
        writer.write(io.BytesIO())


def test_a_table_of_tensor_columns_only():
    table = pa.table({"tensor": tensor_column(_values(np.random.default_rng(7), np.int16, (4, 5)))})
    buf = io.BytesIO()
    write_table(table, buf)
    assert pq.read_table(io.BytesIO(buf.getvalue())).equals(table)
