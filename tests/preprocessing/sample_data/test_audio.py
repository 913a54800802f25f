"""The generated AudioSet sample: real encoders, the real CSV format, the broken files."""

import av
import soundfile as sf

from preprocessing.layouts.audioset import parse_class_labels, parse_segments
from preprocessing.sample_data.audio import mp3_encoder_available, write_audioset_sample


def test_sample_has_real_encodings_and_the_csv_format(tmp_path):
    ds = write_audioset_sample(tmp_path, seed=1)
    infos = {s: sf.info(str(tmp_path / s)) for s in ds.rows if not s.endswith(".mp3")}
    kinds = {(i.format, i.subtype, i.samplerate, i.channels) for i in infos.values()}
    assert ("WAV", "PCM_16", 16_000, 1) in kinds
    assert ("WAV", "PCM_16", 44_100, 2) in kinds
    assert ("FLAC", "PCM_24", 48_000, 1) in kinds
    assert ds.mp3 == mp3_encoder_available()
    mp3s = [s for s in ds.rows if s.endswith(".mp3")]
    assert len(mp3s) == int(ds.mp3)
    for s in mp3s:
        with av.open(str(tmp_path / s)) as c:
            assert c.format.name == "mp3"  # the decoder is named "mp3float"
            assert c.streams.audio[0].codec_context.name.startswith("mp3")
    text = (tmp_path / "balanced_train_segments.csv").read_text()
    assert text.splitlines()[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    segments, bad = parse_segments(text)
    assert not bad and any(len(s.labels) == 2 for s in segments)
    assert '"/m/09x0r,/m/05zppz"' in text  # quoted, comma-separated label list
    label_map, names = parse_class_labels((tmp_path / "class_labels_indices.csv").read_text())
    assert label_map == ds.label_map and names["/m/05zppz"] == "Male speech, man speaking"
    assert sorted(ds.broken.values()) == sorted(
        ["truncated", "empty", "missing_file", "unknown_mid", "unlabelled"]
    )
    empty = next(s for s, k in ds.broken.items() if k == "empty")
    assert (tmp_path / empty).stat().st_size == 0
    missing = next(s for s, k in ds.broken.items() if k == "missing_file")
    assert missing.startswith("balanced_train_segments.csv:")


def test_sample_is_deterministic(tmp_path):
    a = write_audioset_sample(tmp_path / "a", seed=2)
    b = write_audioset_sample(tmp_path / "b", seed=2)
    assert a.rows == b.rows and a.broken == b.broken
    for p in (tmp_path / "a").rglob("*.*"):
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
