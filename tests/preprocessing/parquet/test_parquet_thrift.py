"""The named Parquet field ids read a footer pyarrow wrote as pyarrow's own metadata says."""

from __future__ import annotations

import io
import struct

import pyarrow as pa
import pyarrow.parquet as pq

from preprocessing.parquet import parquet_thrift as pt
from preprocessing.parquet import thrift_compact as tc


def test_field_ids_agree_with_pyarrows_metadata():
    table = pa.table(
        {
            "x": pa.array([1, 2, 3], pa.int64()),
            "l": pa.array([[1.0], [], [2.0, 3.0]], pa.list_(pa.float32())),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_page_index=False)
    data = buf.getvalue()
    (length,) = struct.unpack("<I", data[-8:-4])
    meta, _ = tc.decode_struct(data[-8 - length : -8])
    ref = pq.ParquetFile(io.BytesIO(data)).metadata

    assert tc.value(meta, pt.FILE_METADATA_NUM_ROWS) == ref.num_rows == 3
    schema = tc.value(meta, pt.FILE_METADATA_SCHEMA)[1]
    names = [tc.value(el, pt.SCHEMA_ELEMENT_NAME) for el in schema]
    assert names == [b"schema", b"x", b"l", b"list", b"element"]
    assert tc.value(schema[0], pt.SCHEMA_ELEMENT_NUM_CHILDREN) == 2
    assert tc.value(schema[1], pt.SCHEMA_ELEMENT_TYPE) == pt.INT64
    assert tc.value(schema[3], pt.SCHEMA_ELEMENT_REPETITION_TYPE) == pt.REPEATED
    assert tc.value(schema[4], pt.SCHEMA_ELEMENT_TYPE) == pt.FLOAT

    (group,) = tc.value(meta, pt.FILE_METADATA_ROW_GROUPS)[1]
    ref_group = ref.row_group(0)
    assert tc.value(group, pt.ROW_GROUP_NUM_ROWS) == ref_group.num_rows
    assert tc.value(group, pt.ROW_GROUP_TOTAL_BYTE_SIZE) == ref_group.total_byte_size
    chunks = tc.value(group, pt.ROW_GROUP_COLUMNS)[1]
    for i, chunk in enumerate(chunks):
        col = ref_group.column(i)
        m = tc.value(chunk, pt.COLUMN_CHUNK_META_DATA)
        path = [p.decode() for p in tc.value(m, pt.COLUMN_META_DATA_PATH_IN_SCHEMA)[1]]
        assert ".".join(path) == col.path_in_schema
        assert tc.value(m, pt.COLUMN_META_DATA_CODEC) == pt.CODECS["zstd"]
        assert tc.value(m, pt.COLUMN_META_DATA_NUM_VALUES) == col.num_values
        assert tc.value(m, pt.COLUMN_META_DATA_TOTAL_COMPRESSED_SIZE) == col.total_compressed_size
        assert (
            tc.value(m, pt.COLUMN_META_DATA_TOTAL_UNCOMPRESSED_SIZE) == col.total_uncompressed_size
        )
        assert tc.value(m, pt.COLUMN_META_DATA_DATA_PAGE_OFFSET) == col.data_page_offset
        assert tc.value(m, pt.COLUMN_META_DATA_DICTIONARY_PAGE_OFFSET) == col.dictionary_page_offset
        assert not any(f in chunk for f in pt.COLUMN_CHUNK_PAGE_INDEX_FIELDS)
