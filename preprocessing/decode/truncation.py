"""Truncation read from a container's own structure, for formats whose decoders stop early.

FFmpeg decodes a cut Matroska/WebM or MP3 file without an error: it returns the frames that
are there. These functions look at the bytes instead and return a reason (a string) when the
file is shorter than its own structure says, else None. None also means "not determinable"
(another format, an unknown-size stream cut between elements, free-format MP3, junk where a
frame header should be): only positive evidence of a cut is reported.

Matroska/WebM (EBML magic ``1A 45 DF A3``): the EBML header, then the top-level ``Segment``
(ID ``18 53 80 67``). A Segment of known size whose data runs past the end of the file is
truncated. A Segment of unknown size (all value bits set, as written for live streams and
unseekable outputs) is walked element by element; an element whose declared size runs past
the end, or an element header cut short, is a truncation. An unknown-size ``Cluster`` is
walked through its blocks (a Cluster ends where the next top-level ID starts).

MP3: ID3v2 tags are skipped (syncsafe sizes), ID3v1 (``TAG``), Lyrics3v2 and APEv2 trailers
are set aside, and MPEG audio frame headers are walked from the first frame; a header must
keep the first frame's version, layer and sample rate. A last frame longer than the bytes
that remain is a truncation. A Xing/Info (LAME, FFmpeg) or VBRI header in the first frame
declares the number of audio frames (counted after that header frame) and of bytes (from
that header frame to the end of the audio): fewer frames walked to a clean end, or fewer
bytes, is a truncation. Free-format streams (bitrate index 0) are not judged.
"""

from __future__ import annotations

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
SEGMENT = 0x18538067
CLUSTER = 0x1F43B675
_NAMES = {
    SEGMENT: "Segment",
    CLUSTER: "Cluster",
    0x114D9B74: "SeekHead",
    0x1549A966: "Info",
    0x1654AE6B: "Tracks",
    0x1C53BB6B: "Cues",
    0x1941A469: "Attachments",
    0x1043A770: "Chapters",
    0x1254C367: "Tags",
    0xA3: "SimpleBlock",
    0xA0: "BlockGroup",
}


def _element(data: bytes, pos: int) -> tuple[int, int | None, int] | None:
    """(ID, data size or None if unknown, offset of the data) of the EBML element at ``pos``;
    None if its header is invalid or runs past the end of ``data``."""
    fields: list[tuple[int, int]] = []  # (raw value, length)
    for max_len in (4, 8):  # an ID has at most 4 bytes, a size at most 8
        if pos >= len(data) or data[pos] == 0:
            return None
        length = 9 - data[pos].bit_length()  # leading zero bits + 1
        if length > max_len or pos + length > len(data):
            return None
        fields.append((int.from_bytes(data[pos : pos + length], "big"), length))
        pos += length
    (eid, _), (raw, length) = fields
    mask = (1 << (7 * length)) - 1
    return eid, None if raw & mask == mask else raw & mask, pos


def _name(eid: int) -> str:
    return _NAMES.get(eid, f"element 0x{eid:X}")


def _walk_unknown_segment(data: bytes, pos: int) -> str | None:
    """The reason an unknown-size Segment whose data starts at ``pos`` is cut, if it is."""
    while pos < len(data):
        el = _element(data, pos)
        if el is None:
            if len(data) - pos < 12 and data[pos]:  # an element header (<= 12 bytes) cut short
                return (
                    f"truncated Matroska file: element header at byte {pos} cut short, "
                    f"{len(data) - pos} bytes remain"
                )
            return None  # invalid bytes: not determinable
        eid, size, start = el
        if size is None:
            if eid != CLUSTER:
                return None
            pos = start  # step into the Cluster: its blocks are walked like its siblings
            continue
        if start + size > len(data):
            return (
                f"truncated Matroska file: {_name(eid)} at byte {pos} declares {size} bytes, "
                f"{len(data) - start} remain"
            )
        pos = start + size
    return None


def matroska_truncation(data: bytes) -> str | None:
    """Why a Matroska/WebM file is truncated, or None (not truncated, or not determinable)."""
    if not data.startswith(EBML_MAGIC):
        return None
    head = _element(data, 0)
    if head is None:  # a header cut short (it has at most 12 bytes), else invalid
        if len(data) < 12:
            return f"truncated Matroska file: EBML header cut short ({len(data)} bytes)"
        return None
    _, size, start = head
    if size is None:
        return None
    if start + size > len(data):
        return (
            f"truncated Matroska file: EBML header declares {size} bytes, "
            f"{len(data) - start} remain"
        )
    pos = start
    while pos < start + size:  # the DocType (0x4282), "matroska" if absent
        el = _element(data, pos)
        if el is None or el[1] is None:
            return None
        if el[0] == 0x4282 and data[el[2] : el[2] + el[1]].rstrip(b"\0") not in (
            b"matroska",
            b"webm",
        ):
            return None
        pos = el[2] + el[1]
    pos = start + size
    while True:  # top-level elements up to the Segment (EBML Void/CRC may come first)
        if pos >= len(data):
            return f"truncated Matroska file: ends at byte {pos}, before its Segment"
        el = _element(data, pos)
        if el is None:
            if len(data) - pos < 12:
                return f"truncated Matroska file: Segment header at byte {pos} cut short"
            return None
        eid, size, start = el
        if eid == SEGMENT:
            if size is None:
                return _walk_unknown_segment(data, start)
            if start + size > len(data):
                return (
                    f"truncated Matroska file: Segment declares {size} bytes, "
                    f"file has {len(data) - start} after its header"
                )
            return None
        if size is None:
            return None
        pos = start + size


# MPEG audio: kbit/s for bitrate indices 1..14, by (MPEG-1, layer)
_V1 = {
    1: (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    2: (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    3: (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
}
_V2 = {
    1: (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    2: (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_V2[3] = _V2[2]
_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}


def _mp3_frame(data: bytes, pos: int) -> tuple[tuple[int, int, int], int | None, bool] | None:
    """((version bits, layer, sample rate), frame length in bytes or None for free format,
    mono) of the MPEG audio frame header at ``pos``; None if there is no valid header."""
    if pos + 4 > len(data):
        return None
    h = int.from_bytes(data[pos : pos + 4], "big")
    version, layer = (h >> 19) & 3, 4 - ((h >> 17) & 3)  # layer bits 01 = III ... 11 = I
    bitrate, rate_index, padding = (h >> 12) & 15, (h >> 10) & 3, (h >> 9) & 1
    if h >> 21 != 0x7FF or version == 1 or layer == 4 or bitrate == 15 or rate_index == 3:
        return None
    rate = _RATES[version][rate_index]
    length = None
    if bitrate:
        bps = 1000 * (_V1 if version == 3 else _V2)[layer][bitrate - 1]
        if layer == 1:
            length = (12 * bps // rate + padding) * 4
        else:
            length = (72 if layer == 3 and version != 3 else 144) * bps // rate + padding
    return (version, layer, rate), length, (h >> 6) & 3 == 3


def _audio_end(data: bytes, start: int) -> int:
    """End of the MPEG frames: before ID3v1 (and its TAG+), APEv2 and Lyrics3v2 trailers."""
    end = len(data)
    for _ in range(4):
        if end - 128 >= start and data[end - 128 : end - 125] == b"TAG":
            end -= 227 if data[end - 227 : end - 223] == b"TAG+" else 128
        elif end - 32 >= start and data[end - 32 : end - 24] == b"APETAGEX":
            flags = int.from_bytes(data[end - 12 : end - 8], "little")
            size = int.from_bytes(data[end - 20 : end - 16], "little")
            end -= size + (32 if flags & 0x80000000 else 0)
        elif data[end - 9 : end] == b"LYRICS200" and data[end - 15 : end - 9].isdigit():
            end -= int(data[end - 15 : end - 9]) + 15
        else:
            break
    return max(end, start)


def _vbr_header(data: bytes, pos: int, mono: bool, mpeg1: bool) -> tuple[str, int, int] | None:
    """(name, declared frames or 0, declared bytes or 0) of a Xing/Info or VBRI header in the
    (layer III) frame at ``pos``."""
    side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    for off in (4 + side, 6 + side):  # after the side info, without or with a CRC
        tag = data[pos + off : pos + off + 4]
        if tag in (b"Xing", b"Info") and pos + off + 16 <= len(data):
            flags = int.from_bytes(data[pos + off + 4 : pos + off + 8], "big")
            q, frames, nbytes = pos + off + 8, 0, 0
            if flags & 1:
                frames, q = int.from_bytes(data[q : q + 4], "big"), q + 4
            if flags & 2:
                nbytes = int.from_bytes(data[q : q + 4], "big")
            return tag.decode(), frames, nbytes
    if data[pos + 36 : pos + 40] == b"VBRI" and pos + 54 <= len(data):
        nbytes = int.from_bytes(data[pos + 46 : pos + 50], "big")
        return "VBRI", int.from_bytes(data[pos + 50 : pos + 54], "big"), nbytes
    return None


def _first_frame(data: bytes, start: int, end: int) -> int | None:
    """Offset of the first MPEG audio frame at or after ``start`` (within 64 KiB): a valid
    header at ``start``, or one further on followed by a second one of the same kind."""
    if _mp3_frame(data, start) is not None:
        return start
    pos = data.find(b"\xff", start, min(end, start + 65_536))
    while pos >= 0:
        head = _mp3_frame(data, pos)
        if head is not None and head[1] is not None:
            nxt = _mp3_frame(data, pos + head[1])
            if pos + head[1] == end or (nxt is not None and nxt[0] == head[0]):
                return pos
        pos = data.find(b"\xff", pos + 1, min(end, start + 65_536))
    return None


def _cut_header(data: bytes, pos: int, end: int) -> str | None:
    """The reason if the 1-3 bytes from ``pos`` to ``end`` start an MPEG audio frame header."""
    remain = end - pos
    if 0 < remain < 4 and data[pos] == 0xFF and (remain == 1 or data[pos + 1] & 0xE0 == 0xE0):
        return f"truncated MP3: last frame at byte {pos} needs 4 bytes, {remain} remain"
    return None


def mp3_truncation(data: bytes) -> str | None:
    """Why an MP3 file is truncated, or None (not truncated, or not determinable)."""
    start = 0
    while data[start : start + 3] == b"ID3" and start + 10 <= len(data):  # ID3v2 tags
        if any(b & 0x80 for b in data[start + 6 : start + 10]):
            return None  # not a syncsafe size: not an ID3v2 tag
        size = 20 if data[start + 5] & 0x10 else 10  # header (+ footer), then 4 x 7 bits
        size += sum(b << (7 * (3 - i)) for i, b in enumerate(data[start + 6 : start + 10]))
        if start + size > len(data):
            return f"truncated MP3: ID3v2 tag declares {size} bytes, {len(data) - start} remain"
        start += size
    end = _audio_end(data, start)
    first = _first_frame(data, start, end)
    if first is None:
        return _cut_header(data, start, end)
    found = _mp3_frame(data, first)
    if found is None or found[1] is None:
        return None  # free format: frame lengths are not in the headers
    kind, _, mono = found
    pos, frames, clean = first, 0, False
    while True:  # walk the frames
        remain = end - pos
        if remain == 0:
            clean = True
            break
        if remain < 4:
            return _cut_header(data, pos, end)
        head = _mp3_frame(data, pos)
        if head is None or head[0] != kind or head[1] is None:
            break  # junk, another stream, free format: stop judging here
        if head[1] > remain:
            return f"truncated MP3: last frame at byte {pos} needs {head[1]} bytes, {remain} remain"
        frames, pos = frames + 1, pos + head[1]
    vbr = _vbr_header(data, first, mono, kind[0] == 3) if kind[1] == 3 else None
    if vbr is None:
        return None
    name, declared_frames, declared_bytes = vbr
    audio_frames = frames - 1  # the header frame carries no audio
    if declared_frames and clean and audio_frames < declared_frames:
        return (
            f"truncated MP3: {name} header declares {declared_frames} frames, "
            f"{audio_frames} follow it"
        )
    whole = declared_frames and clean and audio_frames >= declared_frames
    if declared_bytes and end - first < declared_bytes and not whole:
        return (
            f"truncated MP3: {name} header declares {declared_bytes} bytes, "
            f"file has {end - first} from its first frame"
        )
    return None


def container_truncation(data: bytes) -> str | None:
    """The truncation reason for Matroska/WebM (EBML magic) or MP3 (``ID3`` or an MPEG audio
    frame header at byte 0) bytes; None if not truncated, not determinable, or another
    format (WAV, FLAC, MP4, AVI, ...)."""
    if data.startswith(EBML_MAGIC):
        return matroska_truncation(data)
    if data.startswith(b"ID3") or _mp3_frame(data, 0) is not None:
        return mp3_truncation(data)
    return None
