"""One fixed-shape tensor column's Parquet data pages, encoded as rows arrive.

The column is Arrow's ``fixed_size_list<value>[cell]`` as pyarrow lays it out in Parquet:
``optional group name (LIST) { repeated group list { optional <physical> element } }``, so
one repeated level and (with every level optional) a maximum definition level of 3. With no
nulls every level is known in advance, and a page of ``k`` rows is (format v1, zstd):

- repetition levels: per row an RLE run of one 0 and a run of ``cell - 1`` ones;
- definition levels: one RLE run of ``k * cell`` maximum levels;
- values: ``BYTE_STREAM_SPLIT`` of the physical type (byte 0 of every value, then byte 1, ...).

uint8 values are INT32 in Parquet, so their four streams are the values themselves and three
zero streams: rows are copied straight into stream 0 of a reused page buffer whose other
streams stay zero, and the values are never widened. Other value types are converted to the
physical type and split when the page is full. A page holds whole rows, about ``PAGE_BYTES``
of uncompressed values (at least one row).
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from preprocessing.parquet import parquet_thrift as pt
from preprocessing.parquet import thrift_compact as tc

PAGE_BYTES = 1 << 20
PHYSICAL_DTYPE = {pt.INT32: "<i4", pt.INT64: "<i8", pt.FLOAT: "<f4", pt.DOUBLE: "<f8"}


def rle_run(value: int, count: int, bit_width: int) -> bytes:
    """One run of Parquet's RLE/bit-packing hybrid encoding."""
    header = count << 1
    out = bytearray()
    while header > 0x7F:
        out.append((header & 0x7F) | 0x80)
        header >>= 7
    out.append(header)
    return bytes(out) + value.to_bytes((bit_width + 7) // 8, "little")


def page_levels(rows: int, cell: int, max_def: int) -> bytes:
    """A v1 page's repetition then definition levels (each length-prefixed) for ``rows``
    present tensors of ``cell`` values under one repeated level."""
    one_row = rle_run(0, 1, 1) + rle_run(1, cell - 1, 1)
    rep = one_row * rows if cell > 1 else rle_run(0, rows, 1)
    deff = rle_run(max_def, rows * cell, max_def.bit_length())
    return struct.pack("<I", len(rep)) + rep + struct.pack("<I", len(deff)) + deff


class TensorPages:
    """A tensor column's pages: ``add_rows`` encodes and compresses each page as it fills,
    ``write`` puts them in a file and returns the column chunk's Thrift metadata."""

    def __init__(
        self,
        path: tuple[bytes, ...],
        physical: int,
        max_def: int,
        value_dtype: np.dtype,
        cell: int,
        codec: str,
        level: int,
    ) -> None:
        if physical not in PHYSICAL_DTYPE:
            raise ValueError(f"tensor column {path}: unsupported Parquet physical type {physical}")
        self.path = path
        self.physical = physical
        self.max_def = max_def
        self.value_dtype = np.dtype(value_dtype)
        self.dtype = np.dtype(PHYSICAL_DTYPE[physical])
        self.cell = cell
        self.codec_id = pt.CODECS[codec]
        self._codec = pa.Codec(codec, compression_level=level)
        self.per_page = max(1, PAGE_BYTES // (cell * self.dtype.itemsize))
        self._widen_u8 = self.value_dtype == np.uint8 and self.dtype == np.int32
        self._levels = page_levels(self.per_page, cell, max_def)
        self._pending = 0  # rows in the page being filled
        self._buffer: np.ndarray | None = None  # created on first use
        self._pages: list[tuple[bytes, Any]] = []  # (page header, compressed page)
        self.rows = 0
        self.uncompressed = 0  # bytes, headers included

    def add_rows(self, values: np.ndarray) -> None:
        """Append rows: a (rows, cell) array of the column's value type."""
        if values.ndim != 2 or values.shape[1] != self.cell or values.dtype != self.value_dtype:
            raise ValueError(
                f"tensor column {self.path}: expected ({self.cell},) cells of "
                f"{self.value_dtype}, got {values.dtype} {values.shape}"
            )
        start = 0
        while start < len(values):
            take = min(self.per_page - self._pending, len(values) - start)
            buf = self._page_buffer()
            at = self._value_offset(self._pending)
            buf[at : at + take * self.cell] = values[start : start + take].reshape(-1)
            self._pending += take
            start += take
            if self._pending == self.per_page:
                self._flush()
        self.rows += len(values)

    def add_row(self, value: np.ndarray) -> None:
        """Append one row: an array of ``cell`` values of the column's type, any strides
        (a crop view is copied straight into the page, once)."""
        if value.size != self.cell or value.dtype != self.value_dtype:
            raise ValueError(
                f"tensor column {self.path}: expected {self.cell} values of "
                f"{self.value_dtype}, got {value.dtype} {value.shape}"
            )
        at = self._value_offset(self._pending)
        self._page_buffer()[at : at + self.cell].reshape(value.shape)[...] = value
        self._pending += 1
        self.rows += 1
        if self._pending == self.per_page:
            self._flush()

    def _page_buffer(self) -> np.ndarray:
        if self._buffer is None:
            if self._widen_u8:  # levels, then 4 byte streams; streams 1-3 stay zero
                self._buffer = np.zeros(len(self._levels) + 4 * self.per_page * self.cell, np.uint8)
                self._buffer[: len(self._levels)] = np.frombuffer(self._levels, np.uint8)
            else:
                self._buffer = np.empty(self.per_page * self.cell, self.value_dtype)
        return self._buffer

    def _value_offset(self, row: int) -> int:
        return (len(self._levels) if self._widen_u8 else 0) + row * self.cell

    def _flush(self) -> None:
        """Encode and compress the pending rows as one page."""
        k, n = self._pending, self._pending * self.cell
        if k == 0:
            return
        buf = self._page_buffer()
        if self._widen_u8 and k == self.per_page:
            body: Any = buf  # already laid out: levels, stream 0, zero streams
            size = buf.size
        else:
            values = buf[self._value_offset(0) : self._value_offset(0) + n]
            streams = values.astype(self.dtype).view(np.uint8).reshape(n, self.dtype.itemsize)
            levels = self._levels if k == self.per_page else page_levels(k, self.cell, self.max_def)
            body = levels + np.ascontiguousarray(streams.T).tobytes()
            size = len(body)
        data = self._codec.compress(memoryview(body), asbytes=False)
        header = tc.encode_struct(
            {
                pt.PAGE_HEADER_TYPE: (tc.I32, pt.DATA_PAGE),
                pt.PAGE_HEADER_UNCOMPRESSED_PAGE_SIZE: (tc.I32, size),
                pt.PAGE_HEADER_COMPRESSED_PAGE_SIZE: (tc.I32, len(data)),
                pt.PAGE_HEADER_DATA_PAGE_HEADER: (
                    tc.STRUCT,
                    {
                        pt.DATA_PAGE_HEADER_NUM_VALUES: (tc.I32, n),
                        pt.DATA_PAGE_HEADER_ENCODING: (tc.I32, pt.BYTE_STREAM_SPLIT),
                        pt.DATA_PAGE_HEADER_DEFINITION_LEVEL_ENCODING: (tc.I32, pt.RLE),
                        pt.DATA_PAGE_HEADER_REPETITION_LEVEL_ENCODING: (tc.I32, pt.RLE),
                    },
                ),
            }
        )
        self._pages.append((header, data))
        self.uncompressed += len(header) + size
        self._pending = 0

    def write(self, sink: BinaryIO, offset: int) -> tc.TStruct:
        """Write every page to ``sink``, whose file position is ``offset``; the ColumnChunk."""
        self._flush()
        written = 0
        for header, data in self._pages:
            sink.write(header)
            sink.write(data)
            written += len(header) + len(data)
        total = self.rows * self.cell
        meta: tc.TStruct = {
            pt.COLUMN_META_DATA_TYPE: (tc.I32, self.physical),
            pt.COLUMN_META_DATA_ENCODINGS: (tc.LIST, (tc.I32, [pt.RLE, pt.BYTE_STREAM_SPLIT])),
            pt.COLUMN_META_DATA_PATH_IN_SCHEMA: (tc.LIST, (tc.BINARY, list(self.path))),
            pt.COLUMN_META_DATA_CODEC: (tc.I32, self.codec_id),
            pt.COLUMN_META_DATA_NUM_VALUES: (tc.I64, total),
            pt.COLUMN_META_DATA_TOTAL_UNCOMPRESSED_SIZE: (tc.I64, self.uncompressed),
            pt.COLUMN_META_DATA_TOTAL_COMPRESSED_SIZE: (tc.I64, written),
            pt.COLUMN_META_DATA_DATA_PAGE_OFFSET: (tc.I64, offset),
            pt.COLUMN_META_DATA_ENCODING_STATS: (  # every data page is BYTE_STREAM_SPLIT
                tc.LIST,
                (
                    tc.STRUCT,
                    [
                        {
                            pt.PAGE_ENCODING_STATS_PAGE_TYPE: (tc.I32, pt.DATA_PAGE),
                            pt.PAGE_ENCODING_STATS_ENCODING: (tc.I32, pt.BYTE_STREAM_SPLIT),
                            pt.PAGE_ENCODING_STATS_COUNT: (tc.I32, len(self._pages)),
                        }
                    ],
                ),
            ),
            pt.COLUMN_META_DATA_SIZE_STATISTICS: (  # the level histograms
                tc.STRUCT,
                {
                    pt.SIZE_STATISTICS_REPETITION_LEVEL_HISTOGRAM: (
                        tc.LIST,
                        (tc.I64, [self.rows, total - self.rows]),
                    ),
                    pt.SIZE_STATISTICS_DEFINITION_LEVEL_HISTOGRAM: (
                        tc.LIST,
                        (tc.I64, [0] * self.max_def + [total]),
                    ),
                },
            ),
        }
        return {
            pt.COLUMN_CHUNK_FILE_OFFSET: (tc.I64, 0),
            pt.COLUMN_CHUNK_META_DATA: (tc.STRUCT, meta),
        }
