"""Shard encoding: tensor columns round-trip and use BYTE_STREAM_SPLIT without a dictionary."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from preprocessing.parquet.shards import (
    parquet_write_options,
    tensor_column,
    tensor_from_column,
    write_table_atomic,
)


def _table(rng: np.random.Generator) -> pa.Table:
    smooth = np.repeat(np.repeat(rng.integers(0, 256, (6, 4, 4, 3)), 8, axis=1), 8, axis=2)
    pixels = np.clip(smooth + rng.integers(-3, 4, smooth.shape), 0, 255).astype(np.uint8)
    audio = rng.standard_normal((6, 640)).astype(np.float32)
    return pa.table(
        {
            "image": tensor_column(pixels),  # (6, 32, 32, 3) uint8
            "audio": tensor_column(audio),  # (6, 640) float32
            "label": pa.array(np.arange(6)),
            "source": pa.array([f"train/c/{i}.JPEG" for i in range(6)]),
        }
    )


def test_tensor_columns_round_trip_through_plain_pyarrow(tmp_path):
    table = _table(np.random.default_rng(0))
    write_table_atomic(table, tmp_path / "s.parquet")
    back = pq.read_table(tmp_path / "s.parquet")
    assert back.schema == table.schema
    for name in ("image", "audio"):
        got = tensor_from_column(back[name])
        want = tensor_from_column(table[name])
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert back["source"].to_pylist() == table["source"].to_pylist()
    assert not list(tmp_path.glob("*.tmp"))


def test_tensor_values_are_byte_stream_split_and_others_dictionary(tmp_path):
    table = _table(np.random.default_rng(1))
    write_table_atomic(table, tmp_path / "s.parquet")
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    for leaf in ("image.list.element", "audio.list.element"):
        col = columns[leaf]
        assert "BYTE_STREAM_SPLIT" in col.encodings, (leaf, col.encodings)
        assert not col.has_dictionary_page and not col.is_stats_set
        assert col.compression == "ZSTD"
    assert columns["source"].has_dictionary_page and columns["source"].is_stats_set
    # Splitting the INT32-widened uint8 pixels lets zstd drop the three zero bytes: about a
    # byte per pixel on disk (these noisy pixels barely compress), not four.
    assert columns["image.list.element"].total_compressed_size < 1.25 * table["image"].nbytes


def test_write_options_without_tensor_columns_are_plain_zstd():
    schema = pa.schema([("source", pa.string()), ("reason", pa.string())])
    assert parquet_write_options(schema) == {"compression": "zstd", "compression_level": 1}
