"""Truncation read from the container structure (preprocessing/decode/truncation.py), on files
encoded here by real encoders through PyAV (libmp3lame, libx264, mpeg4, libvpx-vp9, libopus),
an MP3 stream remuxed from the shared AVI, and the shared real samples.

Expected byte offsets come from FFmpeg's own demuxers (packet positions and sizes), not from
the parsers under test."""

import io
import re
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

from preprocessing.decode.audio import AudioDecodeError, decode_audio, load_audio
from preprocessing.decode.truncation import (
    CLUSTER,
    container_truncation,
    matroska_truncation,
    mp3_truncation,
)
from preprocessing.engine.records import DecodeError
from preprocessing.sample_data.audio import clip, mp3_encoder_available
from preprocessing.sample_data.video import _frame_image, encode_clip

needs_lame = pytest.mark.skipif(not mp3_encoder_available(), reason="no libmp3lame in PyAV")


class Unseekable:
    """A write-only sink: FFmpeg's muxers cannot seek back, so Matroska gets an unknown-size
    Segment, as a live stream has."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)


def mp3(seconds=2.0, rate=44_100, channels=2, options=None, qscale=None, tags=None) -> bytes:
    """An MP3 by libmp3lame in FFmpeg's mp3 muxer (ID3v2 + Xing/Info frame by default)."""
    layout = "stereo" if channels == 2 else "mono"
    samples = clip(np.random.default_rng(3), [1, 2], seconds, rate, channels)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3", options=options or {}) as container:
        container.metadata.update(tags or {})
        stream: Any = container.add_stream("libmp3lame", rate=rate, layout=layout)
        if qscale is not None:
            stream.codec_context.qscale = qscale  # VBR: a "Xing" header instead of "Info"
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


def matroska(sink: Any, fmt="matroska", vcodec="mpeg4", frames=30, opus=False) -> None:
    with av.open(sink, "w", format=fmt) as container:
        vs: Any = container.add_stream(vcodec, rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.thread_count = 1
        packets = []
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(_frame_image(0, 3, i, 64, 48), format="rgb24")
            frame.pts = i
            packets += vs.encode(frame)
        packets += vs.encode(None)
        if opus:
            astream: Any = container.add_stream("libopus", rate=48_000, layout="mono")
            tone = clip(np.random.default_rng(4), [0], 1.0, 48_000, 1).T  # (1, n)
            for k in range(0, tone.shape[1], 960):
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(tone[:, k : k + 960]), format="flt", layout="mono"
                )
                af.sample_rate, af.pts = 48_000, k
                packets += astream.encode(af)
            packets += astream.encode(None)
        for packet in packets:
            container.mux(packet)


def packets(data: bytes) -> list[tuple[int, int]]:
    """(byte position, size) of every packet FFmpeg's demuxer reads, in file order."""
    container: Any
    with av.open(io.BytesIO(data)) as container:
        return sorted((p.pos, p.size) for p in container.demux() if p.size)


def id3v2_size(data: bytes) -> int:
    """Header + body of the ID3v2 tag at byte 0 (the body size is 4 x 7 bits)."""
    assert data[:3] == b"ID3" and not data[5] & 0x10  # no footer
    return 10 + (data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9])


@pytest.fixture(scope="module")
def cbr() -> bytes:
    return mp3()


@pytest.fixture(scope="module")
def mkv() -> bytes:
    buf = io.BytesIO()
    matroska(buf, vcodec="libx264", frames=45)
    return buf.getvalue()


@pytest.fixture(scope="module")
def live_mkv() -> bytes:
    sink = Unseekable()
    matroska(sink)
    return bytes(sink.data)


@pytest.fixture(scope="module")
def avi_mp3(shared_samples) -> bytes:
    """The real MP3 stream of the shared AVI (not encoded here), remuxed into an .mp3."""
    out = io.BytesIO()
    src: Any
    avi = str(shared_samples / "video" / "mmaction2_test.avi")
    with av.open(avi) as src, av.open(out, "w", format="mp3") as dst:
        audio = src.streams.audio[0]
        ostream = dst.add_stream_from_template(audio)
        for packet in src.demux(audio):
            if packet.size:
                packet.stream = ostream
                dst.mux(packet)
    return out.getvalue()


@needs_lame
@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # CBR, ID3v2 tag, Info header
        {"qscale": 4},  # VBR, Xing header
        {"options": {"id3v2_version": "0"}},  # no tag: the frame sync at byte 0
        {"options": {"write_xing": "0"}},  # no Xing/Info header
        {"options": {"write_id3v1": "1"}, "tags": {"title": "tone", "artist": "x"}},
        {"rate": 22_050, "channels": 1, "seconds": 1.0},  # MPEG-2 layer III, mono
    ],
)
def test_complete_mp3s_are_not_flagged(kwargs):
    data = mp3(**kwargs)
    assert mp3_truncation(data) is None
    assert container_truncation(data) is None
    assert load_audio(data, "a.mp3")[1] == kwargs.get("rate", 44_100)


@needs_lame
def test_id3v1_trailer_is_set_aside():
    data = mp3(options={"write_id3v1": "1"}, tags={"title": "tone"})
    assert data[-128:-125] == b"TAG"
    assert container_truncation(data[:-128]) is None  # the tag gone, the audio whole
    pos, size = packets(data)[-1]
    cut = data[: pos + size // 2]
    assert container_truncation(cut) == (
        f"truncated MP3: last frame at byte {pos} needs {size} bytes, {size // 2} remain"
    )


@needs_lame
@pytest.mark.parametrize("where", ["last byte", "last 3 bytes", "mid file", "second frame"])
def test_mp3_cut_inside_a_frame_names_the_frame(cbr, where):
    frames = packets(cbr)
    assert frames[-1][0] + frames[-1][1] == len(cbr)
    k, keep = {
        "last byte": (-1, frames[-1][1] - 1),
        "last 3 bytes": (-1, frames[-1][1] - 3),
        "mid file": (len(frames) // 2, 100),
        "second frame": (1, 7),
    }[where]
    pos, size = frames[k]
    assert mp3_truncation(cbr[: pos + keep]) == (
        f"truncated MP3: last frame at byte {pos} needs {size} bytes, {keep} remain"
    )


@needs_lame
@pytest.mark.parametrize("qscale", [None, 4])
def test_mp3_cut_between_frames_is_caught_by_the_xing_frame_count(qscale):
    data = mp3(qscale=qscale)
    name = "Info" if qscale is None else "Xing"
    frames = packets(data)  # FFmpeg skips the Xing/Info frame: these are the audio frames
    for k in (len(frames) - 1, len(frames) // 2, 1):
        assert mp3_truncation(data[: frames[k][0]]) == (
            f"truncated MP3: {name} header declares {len(frames)} frames, {k} follow it"
        )
    header_end = frames[0][0]  # after the ID3v2 tag and the header frame, no audio
    assert "declares" in (mp3_truncation(data[:header_end]) or "")


@needs_lame
def test_mp3_bytes_count_when_the_frames_cannot_be_walked_to_the_end(cbr):
    frames = packets(cbr)
    first = id3v2_size(cbr)  # the Info frame, right after the tag
    assert cbr[first : first + 2] == b"\xff\xfb" and cbr[first + 36 : first + 40] == b"Info"
    declared = len(cbr) - first
    cut = cbr[: frames[len(frames) // 2][0]] + bytes(100)  # a zero-filled tail stops the walk
    assert mp3_truncation(cut) == (
        f"truncated MP3: Info header declares {declared} bytes, "
        f"file has {len(cut) - first} from its first frame"
    )


@needs_lame
def test_mp3_cuts_in_the_tag_or_a_header():
    data = mp3()
    assert mp3_truncation(data[:20]) == (
        f"truncated MP3: ID3v2 tag declares {id3v2_size(data)} bytes, 20 remain"
    )
    pos = packets(data)[3][0]
    assert mp3_truncation(data[: pos + 2]) == (
        f"truncated MP3: last frame at byte {pos} needs 4 bytes, 2 remain"
    )


@needs_lame
def test_without_a_xing_header_a_cut_between_frames_is_not_determinable():
    data = mp3(options={"write_xing": "0"})
    pos, size = packets(data)[-2]
    assert mp3_truncation(data[: pos + size]) is None  # a shorter, valid stream
    assert mp3_truncation(data[: pos + 10]) is not None


@needs_lame
def test_free_format_is_not_judged(cbr):
    cut = bytearray(cbr[: len(cbr) // 2])
    first = id3v2_size(cbr)
    assert mp3_truncation(bytes(cut)) is not None
    cut[first + 2] &= 0x0F  # bitrate index 0 in the first frame: free format
    assert mp3_truncation(bytes(cut)) is None


def test_the_real_mp3_stream_of_the_avi(avi_mp3):
    assert container_truncation(avi_mp3) is None
    assert load_audio(avi_mp3, "a.mp3")[1] == 44_100
    pos, size = packets(avi_mp3)[-1]
    assert container_truncation(avi_mp3[: pos + 300]) == (
        f"truncated MP3: last frame at byte {pos} needs {size} bytes, 300 remain"
    )


def test_complete_matroska_and_webm_are_not_flagged(mkv, live_mkv):
    webm = io.BytesIO()
    matroska(webm, fmt="webm", vcodec="libvpx-vp9", frames=10, opus=True)
    live_webm = Unseekable()
    matroska(live_webm, fmt="webm", vcodec="libvpx-vp9", frames=10, opus=True)
    for data in (mkv, live_mkv, webm.getvalue(), bytes(live_webm.data)):
        assert matroska_truncation(data) is None
        assert container_truncation(data) is None
    assert live_mkv.find(b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff") > 0  # unknown


def test_matroska_with_a_known_segment_size_cut_anywhere(mkv):
    seg = mkv.find(b"\x18\x53\x80\x67")
    start = seg + 4 + 8  # FFmpeg writes the Segment size on 8 bytes
    declared = int.from_bytes(mkv[seg + 5 : start], "big")
    assert declared == len(mkv) - start  # the Segment is the last top-level element
    pos, size = packets(mkv)[len(packets(mkv)) // 2]
    for cut in (len(mkv) - 1, len(mkv) - 4, pos + size // 2, start + 20, start):
        assert matroska_truncation(mkv[:cut]) == (
            f"truncated Matroska file: Segment declares {declared} bytes, "
            f"file has {cut - start} after its header"
        )
    assert matroska_truncation(mkv[: seg + 6]) == (
        f"truncated Matroska file: Segment header at byte {seg} cut short"
    )
    assert "EBML header" in (matroska_truncation(mkv[:10]) or "")
    assert "before its Segment" in (matroska_truncation(mkv[:seg]) or "")


def clusters(data: bytes) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(CLUSTER.to_bytes(4, "big")), data)]


def test_matroska_with_an_unknown_segment_size_checks_its_last_cluster(live_mkv):
    last = clusters(live_mkv)[-1]
    pos, _ = packets(live_mkv)[-1]
    reason = matroska_truncation(live_mkv[: pos + 3])
    assert reason is not None
    assert reason.startswith(f"truncated Matroska file: Cluster at byte {last} declares")
    assert matroska_truncation(live_mkv[:-1]) is not None
    assert matroska_truncation(live_mkv[: last + 3]) == (
        f"truncated Matroska file: element header at byte {last} cut short, 3 bytes remain"
    )
    assert matroska_truncation(live_mkv[:last]) is None  # between clusters: not determinable


def test_an_unknown_size_cluster_is_walked_through_its_blocks(live_mkv):
    first = clusters(live_mkv)[0]
    patched = bytearray(live_mkv)
    length = 9 - patched[first + 4].bit_length()  # the size's length, kept: the marker bit
    unknown = (1 << (7 * length + 1)) - 1  # and all 7 * length value bits set
    patched[first + 4 : first + 4 + length] = unknown.to_bytes(length, "big")
    data = bytes(patched)
    assert matroska_truncation(data) is None
    block_pos, block_size = packets(data)[1]  # a video frame inside the first Cluster
    assert block_pos < clusters(data)[1]
    reason = matroska_truncation(data[: block_pos + block_size // 2])
    assert reason is not None and re.fullmatch(
        r"truncated Matroska file: SimpleBlock at byte \d+ declares \d+ bytes, \d+ remain",
        reason,
    )


def wav_flac_mp4() -> list[bytes]:
    x = np.zeros((4_800, 1), dtype=np.float32)
    out = []
    for fmt in ("WAV", "FLAC"):
        buf = io.BytesIO()
        sf.write(buf, x, 48_000, format=fmt, subtype="PCM_16")
        out.append(buf.getvalue())
    out.append(encode_clip("mp4", "libx264", (64, 48), 25, 10, 0, 3))
    return out


def test_other_formats_are_not_judged():
    for data in wav_flac_mp4():
        assert container_truncation(data) is None
        assert container_truncation(data[: len(data) // 2]) is None
    assert container_truncation(b"") is None
    assert container_truncation(b"hello, not media") is None


def test_the_complete_real_samples_are_not_flagged(shared_samples, avi_mp3):
    files = sorted(p for p in shared_samples.rglob("*") if p.is_file())
    assert len(files) >= 8
    for path in files:
        assert container_truncation(path.read_bytes()) is None, path
    assert container_truncation(avi_mp3) is None


@needs_lame
def test_a_truncated_mp3_is_rejected_by_the_audio_decode(cbr):
    pos, size = packets(cbr)[-1]
    with pytest.raises(AudioDecodeError) as exc:
        decode_audio(cbr[: pos + 10], "clip.mp3")
    assert isinstance(exc.value, DecodeError) and exc.value.stage == "decode"
    assert exc.value.reason == (
        f"truncated MP3: last frame at byte {pos} needs {size} bytes, 10 remain"
    )
    assert decode_audio(cbr, "clip.mp3").shape == (61_440,)  # the whole file still decodes


def test_a_truncated_webm_is_rejected_by_the_audio_decode():
    sink = Unseekable()
    matroska(sink, fmt="webm", vcodec="libvpx-vp9", frames=5, opus=True)
    data = bytes(sink.data)
    assert load_audio(data, "clip.webm")[1] == 48_000
    with pytest.raises(AudioDecodeError, match=r"^decode: truncated Matroska file: Cluster"):
        load_audio(data[:-5], "clip.webm")
