"""The optical-flow (autoflow) job, end to end on Ray, per layout, plus the real Chairs pair."""

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from preprocessing.config import AutoflowPreprocessConfig
from preprocessing.decode.flow import read_flo
from preprocessing.engine.manifest import read_manifest
from preprocessing.modalities.autoflow import preprocess_flow
from preprocessing.parquet.shards import tensor_from_column
from preprocessing.sample_data.flow import FLOW_LAYOUTS, write_flow_sample

H, W = 32, 48
CONFIG = AutoflowPreprocessConfig(height=H, width=W, rows_per_shard=4)
REAL = "real/00001_img1.ppm"
DECODE_REASONS = {
    "bad_magic": "data/00008_flow.flo: bad .flo magic b'PIEX'",
    "truncated_flo": "truncated .flo: ",
    "size_mismatch": "size mismatch: frame 1 56x40, frame 2 56x40, flow 50x40",
    "undecodable": ": ",  # then "corrupt image data: ..." or "truncated file: ...": below
    "interlaced_png": "KITTI flow PNG: unsupported PNG: interlaced (Adam7) 16-bit image",
    "8bit_png": "unsupported KITTI flow PNG: 8-bit with 3 channel(s); expected 16-bit RGB",
}
SCAN_REASONS = {
    "missing_frame": "missing frame 2 ",
    "missing_frames": "missing frame 1 ",
    "missing_flow": "missing flow ",
    "unmatched": "unmatched file",
}


@pytest.fixture(scope="module")
def flow_outputs(tmp_path_factory, ray_cluster, shared_samples):
    root = tmp_path_factory.mktemp("flowjob")
    out = {}
    for layout in FLOW_LAYOUTS:
        ds = write_flow_sample(root / "raw" / layout, layout)
        if layout == "chairs":
            (ds.root / "real").mkdir()
            for name in ("00001_img1.ppm", "00001_img2.ppm", "00001_flow.flo"):
                shutil.copy(shared_samples / "flow" / name, ds.root / "real" / name)
            ds.rows[REAL] = "train"
        manifest = preprocess_flow(ds.root, root / "shards" / layout, CONFIG)
        out[layout] = (ds, root / "shards" / layout, manifest)
    return out


def rows_of(shards, manifest):
    rows = {}
    for split in manifest.splits:
        for p in manifest.shard_paths(split):
            table = pq.read_table(shards / p)
            arrays = {c: tensor_from_column(table[c]) for c in ("frames", "flow", "valid")}
            for i, row in enumerate(table.drop(["frames", "flow", "valid"]).to_pylist()):
                rows[row["source"]] = {
                    **row,
                    "split": split,
                    **{c: a[i] for c, a in arrays.items()},
                }
    return rows


def quarantine_of(shards, manifest):
    return {
        r["source"]: (r["stage"], r["reason"])
        for q in manifest.quarantine
        for r in pq.read_table(shards / q.path).to_pylist()
    }


@pytest.mark.parametrize("layout", FLOW_LAYOUTS)
def test_ray_data_reads_fixed_shape_frames_flow_and_valid(flow_outputs, layout):
    import ray

    ds, shards, m = flow_outputs[layout]
    split = sorted(m.splits)[0]
    batch = ray.data.read_parquet(str(shards / split)).take_batch(100, batch_format="numpy")
    n = m.splits[split].rows
    assert n == sum(1 for s in ds.rows.values() if s == split) > 0
    assert batch["frames"].shape == (n, 2, H, W, 3) and batch["frames"].dtype == np.uint8
    assert batch["flow"].shape == (n, H, W, 2) and batch["flow"].dtype == np.float32
    assert batch["valid"].shape == (n, H, W) and batch["valid"].dtype == np.uint8
    assert batch["orig_height"].dtype == np.int64
    assert m.modality == "autoflow" and m.config["layout"] == layout and m.label_map == {}


@pytest.mark.parametrize("layout", FLOW_LAYOUTS)
def test_rows_carry_the_sample_flow_and_quarantine_names_reasons(flow_outputs, layout):
    ds, shards, m = flow_outputs[layout]
    rows = rows_of(shards, m)
    assert {s: r["split"] for s, r in rows.items()} == ds.rows
    for source, (u, v) in ds.flows.items():
        r = rows[source]
        ok = r["valid"].astype(bool)
        assert (r["orig_height"], r["orig_width"]) == ds.sizes[source]
        scale = (1.0, 1.0) if ds.sizes[source] == (40, 56) else (48 / 30, 38 / 24)
        np.testing.assert_allclose(r["flow"][ok][:, 0], u * scale[0], rtol=1e-6)
        np.testing.assert_allclose(r["flow"][ok][:, 1], v * scale[1], rtol=1e-6)
        assert (r["flow"][~ok] == 0).all()
        assert ok.all() == (source not in ds.invalid)
        assert len(r["key"]) == 64 and r["key"] != rows.get(r["frame2"], {}).get("key")
    q = quarantine_of(shards, m)
    assert set(q) == set(ds.broken)
    for source, kind in ds.broken.items():
        stage, reason = q[source]
        if kind in SCAN_REASONS:
            assert stage == "scan" and reason.startswith(SCAN_REASONS[kind]), (kind, reason)
        else:
            assert stage == "decode" and DECODE_REASONS[kind] in reason, (kind, reason)
            if kind == "undecodable":
                assert "corrupt image data: " in reason or "truncated file: " in reason
    assert m.inputs_seen == ds.total_inputs == m.rows_written + m.quarantined
    assert m.rows_written == len(ds.rows)
    on_disk = {p.relative_to(shards).as_posix() for p in shards.rglob("*.parquet")}
    assert on_disk == m.all_files()


def test_real_chairs_pair_is_center_cropped_with_unchanged_values(flow_outputs, shared_samples):
    _, shards, m = flow_outputs["chairs"]
    row = rows_of(shards, m)[REAL]
    flow, _ = read_flo((shared_samples / "flow" / "00001_flow.flo").read_bytes())
    top, left = (50 - H) // 2, (50 - W) // 2  # 9, 1
    np.testing.assert_array_equal(row["flow"], flow[top : top + H, left : left + W])
    assert row["valid"].all() and (row["orig_height"], row["orig_width"]) == (50, 50)
    assert (row["frame2"], row["flow_file"]) == ("real/00001_img2.ppm", "real/00001_flow.flo")
    # chairs: one upscaled sample (24 x 30), one with unknown flow; sintel: two splits
    assert m.row_flags == {"train": {"invalid_pixels": 1, "resized": 1}}
    assert set(flow_outputs["sintel"][2].splits) == {"val_clean", "val_final"}
    assert flow_outputs["kitti"][2].row_flags == {"val": {"invalid_pixels": 3}}
    assert "sha256" in m.schema_["key"] and "frame 2" in m.schema_["key"]


def test_rerun_writes_nothing_then_a_new_sample_is_added_as_version_2(flow_outputs, tmp_path):
    ds, shards, m = flow_outputs["autoflow"]
    before = {p: p.stat().st_mtime_ns for p in shards.rglob("*")}
    assert preprocess_flow(ds.root, shards, CONFIG).version == m.version == 1
    assert {p: p.stat().st_mtime_ns for p in shards.rglob("*")} == before
    with pytest.raises(ValueError, match="pass --overwrite"):
        preprocess_flow(ds.root, shards, AutoflowPreprocessConfig(height=16, width=16))
    # copy the dataset, add one sample, extend a copy of the output
    raw2, out2 = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(ds.root, raw2)
    shutil.copytree(shards, out2)
    part = raw2 / "static_40k_png_1_of_4"
    shutil.copytree(part / "s0", part / "s9")
    (part / "s9" / "backward.flo").unlink()  # s0's unmatched file
    m2 = preprocess_flow(raw2, out2, CONFIG)
    assert m2.version == 2 and m2.rows_written == m.rows_written + 1
    assert m2.inputs_seen == m.inputs_seen + 1 == m2.rows_written + m2.quarantined
    assert read_manifest(out2).splits["train"].shards[-1].path == "train/part-v0002-00000.parquet"


def test_a_sample_whose_missing_partners_appear_becomes_a_row(flow_outputs, tmp_path):
    ds, shards, m = flow_outputs["chairs"]
    raw2, out2 = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(ds.root, raw2)
    shutil.copytree(shards, out2)
    before = quarantine_of(out2, m)
    assert before["data/00007_img1.ppm"][1].startswith("missing frame 2 ")
    assert before["data/00012_flow.flo"][1].startswith("missing frame 1 ")
    # the missing frames arrive: sample 7's frame 2, sample 12's two frames
    data = raw2 / "data"
    shutil.copy(data / "00007_img1.ppm", data / "00007_img2.ppm")
    shutil.copy(data / "00001_img1.ppm", data / "00012_img1.ppm")
    shutil.copy(data / "00001_img2.ppm", data / "00012_img2.ppm")

    m2 = preprocess_flow(raw2, out2, CONFIG)

    assert m2.version == 2 and m2.rows_written == m.rows_written + 2
    rows = rows_of(out2, m2)
    assert {"data/00007_img1.ppm", "data/00012_img1.ppm"} <= set(rows)
    after = quarantine_of(out2, m2)
    assert set(after) == set(before) - {"data/00007_img1.ppm", "data/00012_flow.flo"}
    assert m2.quarantined == m.quarantined - 2
    # the same samples, now rows: nothing counted twice, nothing lost
    assert m2.inputs_seen == m.inputs_seen == m2.rows_written + m2.quarantined
    on_disk = {p.relative_to(out2).as_posix() for p in out2.rglob("*.parquet")}
    assert on_disk == m2.all_files()  # the replaced scan quarantine file is gone
    assert preprocess_flow(raw2, out2, CONFIG).version == 2  # and again: nothing new
