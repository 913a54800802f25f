"""The AudioSet layout: the real CSV formats, and how rows are matched to files by name."""

import pytest

from preprocessing.layouts.audioset import (
    candidate_stems,
    parse_class_labels,
    parse_segments,
    scan_audioset,
)

# The first lines of the real balanced_train_segments.csv (AudioSet v1, 2017).
REAL_SEGMENTS_HEAD = """\
# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882
# YTID, start_seconds, end_seconds, positive_labels
--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"
--ZhevVpy1s, 50.000, 60.000, "/m/012xff"
--aE2O5G5WE, 0.000, 10.000, "/m/03fwl,/m/04rlf,/m/09x0r"
"""

REAL_LABELS_HEAD = """\
index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/05zppz,"Male speech, man speaking"
2,/m/02zsn,"Female speech, woman speaking"
"""


def test_segment_csv_with_the_real_header_and_quoted_label_lists():
    segments, bad = parse_segments(REAL_SEGMENTS_HEAD)
    assert bad == []
    assert [(s.ytid, s.start, s.end, s.labels, s.line) for s in segments] == [
        ("--PJHxphWEs", "30.000", "40.000", ("/m/09x0r", "/t/dd00088"), 4),
        ("--ZhevVpy1s", "50.000", "60.000", ("/m/012xff",), 5),
        ("--aE2O5G5WE", "0.000", "10.000", ("/m/03fwl", "/m/04rlf", "/m/09x0r"), 6),
    ]


def test_malformed_segment_rows_are_reported_with_their_line():
    segments, bad = parse_segments('# h\nabc, x, 10.0, "/m/a"\nonly, two\n\nok, 1, 2, /m/a,/m/b\n')
    assert [s.labels for s in segments] == [("/m/a", "/m/b")]  # unquoted labels accepted
    assert [line for line, _ in bad] == [2, 3]
    assert "bad start/end" in bad[0][1] and "expected 4 fields" in bad[1][1]


def test_class_labels_with_commas_inside_quoted_names():
    label_map, names = parse_class_labels(REAL_LABELS_HEAD)
    assert label_map == {"/m/09x0r": 0, "/m/05zppz": 1, "/m/02zsn": 2}
    assert names["/m/05zppz"] == "Male speech, man speaking"
    with pytest.raises(ValueError, match=r"indices must be 0..1"):
        parse_class_labels("index,mid,display_name\n0,/m/a,A\n2,/m/b,B\n")
    with pytest.raises(ValueError, match="lacks columns"):
        parse_class_labels("idx,mid\n0,/m/a\n")


def test_candidate_stems_cover_the_mirror_namings():
    (seg,) = parse_segments('abc, 30.000, 40.000, "/m/a"\n')[0]
    assert candidate_stems(seg) == [
        "abc",
        "Yabc",
        "abc_30.000_40.000",
        "Yabc_30.000_40.000",
        "abc_30_40",
        "Yabc_30_40",
    ]


def write(root, rel, data=b"x"):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_scan_matches_files_anywhere_and_rejects_everything_else(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "class_labels_indices.csv").write_text(REAL_LABELS_HEAD)
    head = REAL_SEGMENTS_HEAD.splitlines(keepends=True)[:3]
    (tmp_path / "balanced_train_segments.csv").write_text(
        "".join(head)
        + 'plainid, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n'
        + 'yprefixed, 0.000, 10.000, "/m/02zsn"\n'
        + 'segnamed, 30.000, 40.000, "/m/09x0r"\n'
        + 'intnamed, 0.000, 10.000, "/m/05zppz"\n'
        + 'nofile, 30.000, 40.000, "/m/09x0r"\n'
        + 'badlabel, 30.000, 40.000, "/m/09x0r,/m/nothere"\n'
        + 'plainid, 50.000, 60.000, "/m/09x0r"\n'
    )
    (tmp_path / "unbalanced_train_segments.csv").write_text(
        "".join(head) + 'unbal, 0.000, 10.000, "/m/09x0r"\n'
    )
    (tmp_path / "eval_segments.csv").write_text(
        "".join(head) + 'evalid, 0.000, 10.000, "/m/02zsn"\n'
    )
    write(tmp_path, "a/b/plainid.wav")
    write(tmp_path, "a/plainid.flac")  # a second file for the same segment
    write(tmp_path, "Yyprefixed.FLAC")
    write(tmp_path, "x/segnamed_30.000_40.000.mp3")
    write(tmp_path, "x/intnamed_0_10.wav")
    write(tmp_path, "x/badlabel.wav")
    write(tmp_path, "x/unbal.wav")
    write(tmp_path, "eval/evalid.wav")
    write(tmp_path, "x/stray.wav")
    write(tmp_path, "x/webclip.m4a")
    write(tmp_path, "README.txt")

    scan = scan_audioset(tmp_path)
    got = {(c.source, c.split, c.ytid, c.label_indices) for c in scan.items}
    assert got == {
        ("a/b/plainid.wav", "train", "plainid", (0, 1)),  # first in sorted order wins
        ("Yyprefixed.FLAC", "train", "yprefixed", (2,)),
        ("x/segnamed_30.000_40.000.mp3", "train", "segnamed", (0,)),
        ("x/intnamed_0_10.wav", "train", "intnamed", (1,)),
        ("x/unbal.wav", "train", "unbal", (0,)),
        ("eval/evalid.wav", "val", "evalid", (2,)),
    }
    reasons = {r.source: r.reason for r in scan.rejected}
    assert all(r.stage == "scan" for r in scan.rejected)
    assert set(reasons) == {
        "a/plainid.flac",
        "balanced_train_segments.csv:8",
        "x/badlabel.wav",
        "balanced_train_segments.csv:10",
        "x/stray.wav",
        "x/webclip.m4a",
    }
    assert "duplicate: YTID 'plainid'" in reasons["a/plainid.flac"]
    assert "no audio file for YTID 'nofile'" in reasons["balanced_train_segments.csv:8"]
    assert "'Ynofile_30.000_40.000'" in reasons["balanced_train_segments.csv:8"]
    assert "unknown label mid(s) ['/m/nothere']" in reasons["x/badlabel.wav"]
    assert "duplicate YTID 'plainid'" in reasons["balanced_train_segments.csv:10"]
    assert reasons["x/stray.wav"].startswith("unlabelled")
    assert "unsupported extension '.m4a'" in reasons["x/webclip.m4a"]
    assert scan.label_map == {"/m/09x0r": 0, "/m/05zppz": 1, "/m/02zsn": 2}
    assert scan.inputs_seen == 12  # 10 audio files + 2 rows without a usable file


def test_missing_layout_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="expected the AudioSet layout"):
        scan_audioset(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "eval_segments.csv").write_text("")
    (tmp_path / "b" / "eval_segments.csv").write_text("")
    (tmp_path / "class_labels_indices.csv").write_text(REAL_LABELS_HEAD)
    with pytest.raises(ValueError, match=r"eval_segments\.csv found 2 times"):
        scan_audioset(tmp_path)
