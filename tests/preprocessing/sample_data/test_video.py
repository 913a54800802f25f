"""The generated video samples: real encoders (PyAV), the layouts, the broken files."""

import av

from preprocessing.layouts.kinetics import parse_rows
from preprocessing.sample_data.video import (
    KINETICS_CSV_DIR,
    KINETICS_HEADER,
    UCF_LIST_DIR,
    write_kinetics_sample,
    write_ucf_sample,
    write_video_sample,
)


def streams(path):
    with av.open(str(path)) as c:
        order = [f.pts for f in c.decode(c.streams.video[0])]
    # PyAV >= 18.1.1 refuses a stream of a closed container: read everything while it is open.
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        packets = [p.pts for p in c.demux(v) if p.size]
        audio = [(a.codec_context.name, a.rate, a.channels) for a in c.streams.audio]
        return (
            c.format.name,
            v.codec_context.name,
            (v.width, v.height),
            v.average_rate,
            audio,
            (
                order,
                packets,
            ),
        )


def test_video_sample_uses_real_codecs_and_containers(tmp_path):
    ds = write_video_sample(tmp_path)
    seen = {}
    for source in ds.rows:
        fmt, codec, _, _, audio, (order, packets) = streams(tmp_path / source)
        seen[source.rsplit(".", 1)[1]] = (fmt, codec)
        assert not audio and len(order) >= 12
        if codec == "h264":
            assert packets != sorted(packets)  # B-frames: decode order != presentation order
    assert seen == {
        "mp4": ("mov,mp4,m4a,3gp,3g2,mj2", "h264"),
        "avi": ("avi", "mpeg4"),
        "mkv": ("matroska,webm", "h264"),
    }
    assert sorted(ds.broken.values()) == ["empty", "text", "truncated", "unsupported_extension"]
    empty = next(s for s, k in ds.broken.items() if k == "empty")
    assert (tmp_path / empty).stat().st_size == 0
    assert ds.label_map == {"bowling": 0, "juggling balls": 1, "surfing water": 2}


def test_kinetics_sample_has_the_release_csvs_and_aac_audio(tmp_path):
    ds = write_kinetics_sample(tmp_path)
    text = (tmp_path / KINETICS_CSV_DIR / "train.csv").read_text()
    assert text.splitlines()[0] == KINETICS_HEADER
    rows, bad = parse_rows(text, "train.csv")
    assert not bad and {r.split for r in rows} == {"train"}
    kinds: dict[str, set[tuple[str, int, int]]] = {}
    for source, status in ds.audio.items():
        _, codec, size, _, audio, _ = streams(tmp_path / source)
        assert codec == "h264" and size == (64, 48)
        kinds.setdefault(status, set()).update(audio)
    assert kinds["ok"] == {("aac", 44_100, 2), ("aac", 48_000, 1)}
    assert kinds["missing"] == set() and kinds["silent"] == {("aac", 48_000, 1)}
    assert sorted(ds.broken.values()) == sorted(
        ["missing_clip", "truncated", "empty", "text", "unknown_label", "not_in_csv"]
    )


def test_ucf_sample_has_avi_clips_and_the_release_split_lists(tmp_path):
    ds = write_ucf_sample(tmp_path / "lists", split_lists=True)
    for source in ds.rows:
        fmt, codec, size, _, audio, _ = streams(ds.root / source)
        assert (fmt, codec, size, audio) == ("avi", "mpeg4", (64, 48), [])
    lists = ds.root / UCF_LIST_DIR
    assert (
        lists / "classInd.txt"
    ).read_bytes() == b"1 ApplyEyeMakeup\r\n2 Archery\r\n3 Bowling\r\n"
    train = (lists / "trainlist01.txt").read_text().splitlines()
    test = (lists / "testlist01.txt").read_text().splitlines()
    assert train[0] == "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 1"
    assert test[0] == "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    assert {s.split(" ")[0] for s in test} == {src for src in ds.rows if "_g01_" in src}
    assert {split for split, _ in ds.rows.values()} == {"train", "val"}
    assert sorted(ds.broken.values()) == sorted(
        ["truncated", "unsupported_extension", "unlabelled", "unlisted", "missing_clip"]
    )
    plain = write_ucf_sample(tmp_path / "plain", split_lists=False)
    assert not (plain.root / UCF_LIST_DIR).exists() and set(plain.rows) == set(ds.rows)
    assert {split for split, _ in plain.rows.values()} == {""}  # the job's val_fraction decides
