"""Thrift's compact protocol, as Parquet uses it for page headers and the file footer.

Parquet's metadata (``FileMetaData``, ``RowGroup``, ``ColumnChunk``, ``PageHeader``, ...) is
Thrift structs serialised with the compact protocol. ``preprocessing.parquet.tensor_parquet``
reads the footer pyarrow wrote, adds its own column chunks and writes the footer back, so it needs
both directions, with every field kept, including ones this module knows nothing about.

A struct is held as ``{field_id: (type, value)}`` (a ``TStruct``), so a decoded struct
re-encodes to the same bytes and new fields only need their compact type. Values by type:
``BOOL`` -> bool, ``BYTE``/``I16``/``I32``/``I64`` -> int, ``DOUBLE`` -> float,
``BINARY`` -> bytes, ``LIST``/``SET`` -> ``(element_type, [values])``,
``MAP`` -> ``(key_type, value_type, [(key, value)])``, ``STRUCT`` -> ``TStruct``.
``value(struct, field_id)`` reads a field's value; the field ids of Parquet's structs are
named in ``preprocessing.parquet.parquet_thrift``.

Specification: https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md
"""

from __future__ import annotations

import struct
from typing import Any

# Compact protocol type ids (a bool field's value lives in its type id: 1 true, 2 false).
BOOL, BYTE, I16, I32, I64, DOUBLE, BINARY = 1, 3, 4, 5, 6, 7, 8
LIST, SET, MAP, STRUCT = 9, 10, 11, 12
_FALSE = 2
_STOP = 0

TStruct = dict[int, tuple[int, Any]]


class ThriftError(ValueError):
    """Bytes that are not a well-formed compact-protocol struct."""


# --- encoding ---------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"varint of a negative number {n}")
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _encode_value(ttype: int, value: Any, out: bytearray) -> None:
    if ttype == BOOL:  # inside a list (a field's bool is in its header)
        out.append(1 if value else _FALSE)
    elif ttype == BYTE:
        out += struct.pack("<b", value)
    elif ttype in (I16, I32, I64):
        out += _varint(_zigzag(int(value)))
    elif ttype == DOUBLE:
        out += struct.pack("<d", value)
    elif ttype == BINARY:
        data = value.encode() if isinstance(value, str) else bytes(value)
        out += _varint(len(data)) + data
    elif ttype in (LIST, SET):
        etype, items = value
        if len(items) < 15:
            out.append((len(items) << 4) | etype)
        else:
            out.append(0xF0 | etype)
            out += _varint(len(items))
        for item in items:
            _encode_value(etype, item, out)
    elif ttype == MAP:
        ktype, vtype, pairs = value
        out += _varint(len(pairs))
        if pairs:
            out.append((ktype << 4) | vtype)
        for k, v in pairs:
            _encode_value(ktype, k, out)
            _encode_value(vtype, v, out)
    elif ttype == STRUCT:
        _encode_struct(value, out)
    else:
        raise ValueError(f"unknown compact type id {ttype}")


def _encode_struct(fields: TStruct, out: bytearray) -> None:
    last = 0
    for fid in sorted(fields):
        ttype, value = fields[fid]
        wire = (1 if value else _FALSE) if ttype == BOOL else ttype
        delta = fid - last
        if 0 < delta <= 15:
            out.append((delta << 4) | wire)
        else:
            out.append(wire)
            out += _varint(_zigzag(fid))
        if ttype != BOOL:
            _encode_value(ttype, value, out)
        last = fid
    out.append(_STOP)


def encode_struct(fields: TStruct) -> bytes:
    """A ``TStruct`` -> its compact-protocol bytes (fields in id order)."""
    out = bytearray()
    _encode_struct(fields, out)
    return bytes(out)


# --- decoding ---------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes | memoryview, pos: int) -> None:
        self.data = memoryview(data)
        self.pos = pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError(f"compact struct runs past the end of its {len(self.data)} bytes")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ThriftError(f"varint longer than 10 bytes at offset {self.pos}")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ThriftError(f"{n} bytes wanted at offset {self.pos} of {len(self.data)}")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def value(self, ttype: int) -> Any:
        if ttype in (BOOL, _FALSE):  # a bool list element: one byte, 1 true
            return self.byte() == 1
        if ttype == BYTE:
            return struct.unpack("<b", self.take(1))[0]
        if ttype in (I16, I32, I64):
            return self.zigzag()
        if ttype == DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if ttype == BINARY:
            return self.take(self.varint())
        if ttype in (LIST, SET):
            header = self.byte()
            size, etype = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            etype = BOOL if etype == _FALSE else etype
            return (etype, [self.value(etype) for _ in range(size)])
        if ttype == MAP:
            size = self.varint()
            if size == 0:
                return (0, 0, [])
            kv = self.byte()
            ktype, vtype = kv >> 4, kv & 0x0F
            return (ktype, vtype, [(self.value(ktype), self.value(vtype)) for _ in range(size)])
        if ttype == STRUCT:
            return self.struct()
        raise ThriftError(f"unknown compact type id {ttype} at offset {self.pos}")

    def struct(self) -> TStruct:
        fields: TStruct = {}
        last = 0
        while True:
            header = self.byte()
            if header == _STOP:
                return fields
            delta, wire = header >> 4, header & 0x0F
            fid = last + delta if delta else self.zigzag()
            if wire in (BOOL, _FALSE):
                fields[fid] = (BOOL, wire == BOOL)
            else:
                fields[fid] = (wire, self.value(wire))
            last = fid


def value(fields: TStruct, fid: int, default: Any = None) -> Any:
    """The value of field ``fid`` of a struct (``default`` when the field is absent)."""
    return fields[fid][1] if fid in fields else default


def decode_struct(data: bytes | memoryview, pos: int = 0) -> tuple[TStruct, int]:
    """Compact-protocol bytes from ``pos`` -> (the struct, the offset just past it)."""
    reader = _Reader(data, pos)
    return reader.struct(), reader.pos
