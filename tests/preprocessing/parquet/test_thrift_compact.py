"""Thrift compact protocol: every type round-trips, and a real Parquet footer re-encodes
to the same bytes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preprocessing.parquet import thrift_compact as tc


def test_every_type_round_trips():
    value: tc.TStruct = {
        1: (tc.BOOL, True),
        2: (tc.BOOL, False),
        3: (tc.BYTE, -7),
        4: (tc.I16, -300),
        5: (tc.I32, 2**31 - 1),
        6: (tc.I64, -(2**62)),
        7: (tc.DOUBLE, 202021.25),
        8: (tc.BINARY, b"ARROW:schema\x00\xff"),
        9: (tc.LIST, (tc.I32, list(range(-20, 20)))),  # > 14 elements: a long list header
        10: (tc.LIST, (tc.BOOL, [True, False, True])),
        11: (tc.SET, (tc.BINARY, [b"a", b"b"])),
        12: (tc.MAP, (tc.BINARY, tc.I64, [(b"k", 1), (b"l", -2)])),
        13: (tc.STRUCT, {1: (tc.I32, 3), 40: (tc.BINARY, b"far")}),  # field id delta > 15
        100: (tc.LIST, (tc.STRUCT, [{1: (tc.I64, 1)}, {}])),
        101: (tc.MAP, (0, 0, [])),
    }
    data = tc.encode_struct(value)
    decoded, end = tc.decode_struct(data)
    assert end == len(data)
    assert decoded == value


def test_a_pyarrow_footer_decodes_and_re_encodes_to_its_own_bytes():
    table = pa.table(
        {
            "x": pa.array([1, 2, None]),
            "s": pa.array(["a", None, "c"]),
            "l": pa.array([[1.0], [], None]),
            "b": pa.array([True, False, True]),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    (length,) = struct.unpack("<I", data[-8:-4])
    footer = data[-8 - length : -8]
    meta, end = tc.decode_struct(footer)
    assert end == len(footer)
    assert meta[3] == (tc.I64, 3)  # FileMetaData.num_rows
    assert tc.encode_struct(meta) == footer


def test_truncated_bytes_raise_a_thrift_error():
    data = tc.encode_struct({1: (tc.BINARY, b"x" * 40), 2: (tc.I64, np.int64(5).item())})
    with pytest.raises(tc.ThriftError, match="bytes wanted"):
        tc.decode_struct(data[:10])
    with pytest.raises(tc.ThriftError, match="past the end"):
        tc.decode_struct(data[:-1])
