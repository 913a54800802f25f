"""A Parquet writer whose tensor columns skip Arrow's generic nested-column path.

Arrow writes a fixed-shape tensor column (storage ``fixed_size_list<value>[cell]``) like any
list: it computes a repetition and a definition level for every value, widens uint8 to
Parquet's INT32 and then encodes, which costs about 1 ms per 224x224x3 image here, more than
decoding the JPEG. Yet for a tensor with no nulls every level is known in advance: each row is
one run of ``cell`` present values. So this module writes the tensor columns' pages itself
and lets pyarrow write everything else:

1. pyarrow writes the table without its tensor columns (``parquet_write_options``), and an
   empty table of the full schema, whose footer gives the exact Parquet schema, the
   ``ARROW:schema`` metadata (the extension types) and the column orders pyarrow would write.
2. Each tensor column becomes one column chunk of data pages (format v1, ``BYTE_STREAM_SPLIT``
   values, zstd): the repetition levels are two RLE runs per row (0, then ``cell - 1`` ones)
   and the definition levels one run of the maximum level. For uint8 the page's four byte
   streams are the pixels followed by three zero streams, written straight into a reused
   buffer, so the values are never widened.
3. The footer is pyarrow's row group with these chunks put in the schema's column order.

The file is the one ``pq.write_table(table, **parquet_write_options(schema))`` writes up to
byte layout: same schema, metadata, encodings and values (tested against pyarrow, Ray Data
and DuckDB's independent reader). A table this module does not cover (no tensor column, a
null anywhere in a tensor column, a value type other than 8/16/32/64-bit integers and
32/64-bit floats) is written by pyarrow unchanged.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from preprocessing import thrift_compact as tc

MAGIC = b"PAR1"
PAGE_BYTES = 1 << 20  # a data page holds whole rows, about this many uncompressed value bytes
# Parquet enums (parquet.thrift)
_INT32, _INT64, _FLOAT, _DOUBLE = 1, 2, 4, 5
_PHYSICAL_DTYPE = {_INT32: "<i4", _INT64: "<i8", _FLOAT: "<f4", _DOUBLE: "<f8"}
_REQUIRED, _REPEATED = 0, 2
_RLE, _BYTE_STREAM_SPLIT = 3, 9
_DATA_PAGE = 0
_ZSTD = 6
_VALUE_TYPES = {"uint8", "int8", "uint16", "int16", "int32", "int64", "float", "double"}
COMPRESSION, COMPRESSION_LEVEL = "zstd", 1


def parquet_write_options(schema: pa.Schema) -> dict[str, Any]:
    """``pq.write_table`` keyword arguments for ``schema``: zstd level 1 for every column;
    tensor values ``BYTE_STREAM_SPLIT`` with no dictionary and no statistics.

    Parquet has no 8-bit physical type, so uint8 pixels are INT32 values; splitting each
    value's four bytes into four streams lets zstd squeeze the three zero streams to almost
    nothing (files as small as with dictionary encoding). Float32 tensors (audio, flow)
    compress better this way too. Readers need ``BYTE_STREAM_SPLIT`` for INT32 (Parquet
    format 2.11: pyarrow >= 17, and so Ray Data). A pixel's min/max over a shard says nothing,
    so tensor columns carry no statistics.
    """
    tensor_leaves = {
        f"{f.name}.list.element": "BYTE_STREAM_SPLIT"
        for f in schema
        if isinstance(f.type, pa.FixedShapeTensorType)
    }
    others = [f.name for f in schema if not isinstance(f.type, pa.FixedShapeTensorType)]
    options: dict[str, Any] = {"compression": COMPRESSION, "compression_level": COMPRESSION_LEVEL}
    if tensor_leaves:
        options["use_dictionary"] = others
        options["column_encoding"] = tensor_leaves
        options["write_statistics"] = others
    return options


def write_table(table: pa.Table, where: str | os.PathLike[str] | BinaryIO) -> None:
    """Write ``table`` as one Parquet row group (see the module doc) to a path or a file."""
    tensors = [f.name for f in table.schema if _writable_tensor(table.column(f.name))]
    if not tensors or table.num_rows == 0:
        pq.write_table(table, where, **parquet_write_options(table.schema))
        return
    if isinstance(where, (str, os.PathLike)):
        with open(Path(where), "wb") as sink:
            _write(table, tensors, sink)
    else:
        _write(table, tensors, where)


def _writable_tensor(column: pa.ChunkedArray) -> bool:
    """A fixed-shape tensor column of a covered value type with no null cell or value."""
    if not isinstance(column.type, pa.FixedShapeTensorType):
        return False
    if str(column.type.value_type) not in _VALUE_TYPES or column.null_count:
        return False
    return all(chunk.storage.flatten().null_count == 0 for chunk in column.chunks)


def _write(table: pa.Table, tensors: list[str], sink: BinaryIO) -> None:
    rest = table.drop_columns(tensors)
    rest_file = _pyarrow_bytes(rest)
    rest_meta, rest_footer_start = _footer(rest_file)
    full_meta, _ = _footer(_pyarrow_bytes(table.schema.empty_table()))
    leaves = _leaves(full_meta)

    # pyarrow's chunks keep their offsets: its file up to its footer starts ours.
    sink.write(rest_file[:rest_footer_start])
    offset = rest_footer_start
    rest_groups = _items(rest_meta, 4)
    rest_chunks = _items(rest_groups[0], 1) if rest_groups else []
    by_path = {tuple(_items(c[3][1], 3)): c for c in rest_chunks}
    for c in rest_chunks:
        _check_no_index(c)

    chunks: list[tc.TStruct] = []
    for leaf in leaves:
        name = leaf.path[0].decode()
        if name in tensors:
            chunk = _write_tensor_chunk(table.column(name), leaf, offset, sink)
            offset += chunk[3][1][7][1]
            chunks.append(chunk)
        else:
            chunks.append(by_path[leaf.path])
    metas = [c[3][1] for c in chunks]
    first = min(m.get(11, m[9])[1] for m in metas)
    row_group: tc.TStruct = {
        1: (tc.LIST, (tc.STRUCT, chunks)),
        2: (tc.I64, sum(m[6][1] for m in metas)),
        3: (tc.I64, table.num_rows),
        5: (tc.I64, first),
        6: (tc.I64, sum(m[7][1] for m in metas)),
    }
    meta = dict(full_meta)
    meta[3] = (tc.I64, table.num_rows)
    meta[4] = (tc.LIST, (tc.STRUCT, [row_group]))
    footer = tc.encode_struct(meta)
    sink.write(footer + struct.pack("<I", len(footer)) + MAGIC)


def _items(struct_: tc.TStruct, field: int) -> list[Any]:
    """The elements of a struct's list field ([] when the field is absent)."""
    return struct_[field][1][1] if field in struct_ else []


def _pyarrow_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **parquet_write_options(table.schema))
    return buf.getvalue()


def _footer(data: bytes) -> tuple[tc.TStruct, int]:
    """A Parquet file's bytes -> (its decoded FileMetaData, the footer's offset)."""
    if data[:4] != MAGIC or data[-4:] != MAGIC:
        raise ValueError("not a Parquet file (no PAR1 magic)")
    (length,) = struct.unpack("<I", data[-8:-4])
    start = len(data) - 8 - length
    meta, _ = tc.decode_struct(data[start : len(data) - 8])
    return meta, start


def _check_no_index(chunk: tc.TStruct) -> None:
    """pyarrow's chunks are copied in place: nothing in them may point past its data."""
    meta = chunk[3][1]
    if any(f in chunk for f in (4, 5, 6, 7)) or any(f in meta for f in (14, 15)):
        raise ValueError("page indexes and bloom filters are not supported by this writer")


@dataclass(frozen=True)
class _Leaf:
    path: tuple[bytes, ...]
    element: tc.TStruct  # the leaf's SchemaElement
    max_def: int
    max_rep: int


def _leaves(meta: tc.TStruct) -> list[_Leaf]:
    """The schema's leaf columns in order, with their paths and maximum levels."""
    elements = _items(meta, 2)
    leaves: list[_Leaf] = []

    def walk(i: int, path: tuple[bytes, ...], d: int, r: int) -> int:
        el = elements[i]
        rep = el[3][1] if 3 in el else _REQUIRED
        d += rep != _REQUIRED
        r += rep == _REPEATED
        here = (*path, el[4][1])
        children = el[5][1] if 5 in el else 0
        i += 1
        if children == 0:
            leaves.append(_Leaf(here, el, d, r))
        for _ in range(children):
            i = walk(i, here, d, r)
        return i

    i = 1  # element 0 is the root
    for _ in range(elements[0][5][1] if 5 in elements[0] else 0):
        i = walk(i, (), 0, 0)
    return leaves


def _rle_run(value: int, count: int, bit_width: int) -> bytes:
    """One run of Parquet's RLE/bit-packing hybrid encoding."""
    header = count << 1
    out = bytearray()
    while header > 0x7F:
        out.append((header & 0x7F) | 0x80)
        header >>= 7
    out.append(header)
    return bytes(out) + value.to_bytes((bit_width + 7) // 8, "little")


def _levels(rows: int, cell: int, max_def: int) -> bytes:
    """A v1 page's repetition then definition levels (each length-prefixed) for ``rows``
    present tensors of ``cell`` values under one repeated level."""
    row = _rle_run(0, 1, 1) + (_rle_run(1, cell - 1, 1) if cell > 1 else b"")
    rep = row * rows if cell > 1 else _rle_run(0, rows, 1)
    deff = _rle_run(max_def, rows * cell, max_def.bit_length())
    return struct.pack("<I", len(rep)) + rep + struct.pack("<I", len(deff)) + deff


def _write_tensor_chunk(
    column: pa.ChunkedArray, leaf: _Leaf, offset: int, sink: BinaryIO
) -> tc.TStruct:
    """Write a tensor column's pages to ``sink`` (at file ``offset``); its ColumnChunk."""
    if leaf.max_rep != 1:
        raise ValueError(f"tensor column {leaf.path} has {leaf.max_rep} repeated levels")
    physical = leaf.element[1][1]
    dtype = np.dtype(_PHYSICAL_DTYPE[physical])
    parts = [c.storage.flatten().to_numpy(zero_copy_only=False) for c in column.chunks]
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)  # (N * cell,)
    rows = len(column)
    cell = values.size // rows
    per_page = max(1, PAGE_BYTES // (cell * dtype.itemsize))
    codec = pa.Codec(COMPRESSION, compression_level=COMPRESSION_LEVEL)

    written = uncompressed = pages = 0
    scratch: np.ndarray | None = None
    for start in range(0, rows, per_page):
        k = min(per_page, rows - start)
        page_values = values[start * cell : (start + k) * cell]
        levels = _levels(k, cell, leaf.max_def)
        n = k * cell
        if values.dtype == np.uint8 and dtype == np.int32:
            # Byte streams of uint8 widened to INT32: the values, then three zero streams.
            if scratch is None or scratch.size != len(levels) + 4 * n:
                scratch = np.zeros(len(levels) + 4 * n, np.uint8)
            scratch[: len(levels)] = np.frombuffer(levels, np.uint8)
            scratch[len(levels) : len(levels) + n] = page_values
            body: Any = scratch
        else:
            streams = page_values.astype(dtype).view(np.uint8).reshape(n, dtype.itemsize)
            body = levels + np.ascontiguousarray(streams.T).tobytes()
        data = codec.compress(memoryview(body), asbytes=False)
        page_size = len(levels) + n * dtype.itemsize
        header = tc.encode_struct(
            {
                1: (tc.I32, _DATA_PAGE),
                2: (tc.I32, page_size),
                3: (tc.I32, len(data)),
                5: (
                    tc.STRUCT,
                    {
                        1: (tc.I32, n),
                        2: (tc.I32, _BYTE_STREAM_SPLIT),
                        3: (tc.I32, _RLE),
                        4: (tc.I32, _RLE),
                    },
                ),
            }
        )
        sink.write(header)
        sink.write(data)
        written += len(header) + len(data)
        uncompressed += len(header) + page_size
        pages += 1

    total = rows * cell
    meta: tc.TStruct = {
        1: (tc.I32, physical),
        2: (tc.LIST, (tc.I32, [_RLE, _BYTE_STREAM_SPLIT])),
        3: (tc.LIST, (tc.BINARY, list(leaf.path))),
        4: (tc.I32, _ZSTD),
        5: (tc.I64, total),
        6: (tc.I64, uncompressed),
        7: (tc.I64, written),
        9: (tc.I64, offset),
        13: (
            tc.LIST,
            (
                tc.STRUCT,
                [{1: (tc.I32, _DATA_PAGE), 2: (tc.I32, _BYTE_STREAM_SPLIT), 3: (tc.I32, pages)}],
            ),
        ),
        16: (
            tc.STRUCT,
            {
                2: (tc.LIST, (tc.I64, [rows, total - rows])),
                3: (tc.LIST, (tc.I64, [0] * leaf.max_def + [total])),
            },
        ),
    }
    return {2: (tc.I64, 0), 3: (tc.STRUCT, meta)}
