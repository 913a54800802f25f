"""The Ray Data preprocessing job, end to end on real files, on the session's Ray cluster."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from preprocessing.decode.image import decode_image
from preprocessing.engine.manifest import read_manifest
from preprocessing.modalities.image import preprocess_images
from preprocessing.parquet.shards import tensor_from_column


def all_rows(shards, manifest, split):
    tables = [pq.read_table(shards / p) for p in manifest.shard_paths(split)]
    return tables


def test_counts_reconcile_and_broken_files_are_quarantined(image_shards):
    m = image_shards.manifest
    sample = image_shards.sample
    inputs = sample.total_files + len(image_shards.extra)  # generated + 2 real JPEGs + notes.txt
    assert m.inputs_seen == inputs
    assert m.rows_written + m.quarantined == inputs
    q = {}
    for entry in m.quarantine:
        t = pq.read_table(image_shards.shards / entry.path)
        assert t.column_names == ["source", "stage", "reason"]
        q.update(
            {
                s: (st, r)
                for s, st, r in zip(*(t[c].to_pylist() for c in t.column_names), strict=True)
            }
        )
    assert set(q) == {*sample.broken, image_shards.extra["text"]}
    assert "empty file" in q[sample.special["empty"]][1]
    assert q[sample.special["truncated"]][0] == "decode"
    assert "truncated" in q[sample.special["truncated"]][1]
    assert q[image_shards.extra["text"]] == ("scan", q[image_shards.extra["text"]][1])
    assert "unsupported extension '.txt'" in q[image_shards.extra["text"]][1]


def test_manifest_describes_the_shards(image_shards):
    m = read_manifest(image_shards.shards)
    raw = json.loads((image_shards.shards / "manifest.json").read_text())
    assert set(raw) >= {"schema", "label_map", "config_hash", "splits", "quarantine"}
    assert m.label_map == {w: i for i, w in enumerate(sorted(image_shards.sample.wnids))}
    for entry in m.splits.values():
        assert entry.rows == sum(
            pq.read_metadata(image_shards.shards / s.path).num_rows for s in entry.shards
        )
        assert all(s.rows <= 8 for s in entry.shards)  # rows_per_shard=8
    assert m.splits["val"].rows == image_shards.sample.files["val"]
    assert not list(image_shards.shards.rglob("*.tmp"))


def test_rows_match_a_direct_decode_of_their_source(image_shards):
    m = image_shards.manifest
    seen = set()
    for split in m.splits:
        for table in all_rows(image_shards.shards, m, split):
            images = tensor_from_column(table["image"])
            assert images.shape[1:] == (224, 224, 3) and images.dtype == np.uint8
            for i, (source, label, wnid) in enumerate(
                zip(
                    table["source"].to_pylist(),
                    table["label"].to_pylist(),
                    table["wnid"].to_pylist(),
                    strict=True,
                )
            ):
                assert source.split("/")[1] == wnid
                assert label == m.label_map[wnid]
                data = (image_shards.raw / source).read_bytes()
                np.testing.assert_array_equal(images[i], decode_image(data))
                seen.add(source)
    for kind in ("grayscale", "cmyk", "progressive", "palette_png"):
        assert image_shards.sample.special[kind] in seen
    assert image_shards.extra["real_cmyk"] in seen and image_shards.extra["real_gray"] in seen


def test_ray_data_reads_the_shards_back_as_numpy(image_shards):
    import ray

    ds = ray.data.read_parquet(str(image_shards.shards / "train"))
    batch = ds.take_batch(5, batch_format="numpy")
    assert isinstance(batch["image"], np.ndarray)
    assert batch["image"].shape == (5, 224, 224, 3) and batch["image"].dtype == np.uint8
    assert batch["label"].dtype == np.int64
    assert ds.count() == image_shards.manifest.splits["train"].rows


def test_rerun_on_the_same_input_writes_nothing(image_shards):
    before = {p: p.stat().st_mtime_ns for p in image_shards.shards.rglob("*")}
    again = preprocess_images(image_shards.raw, image_shards.shards, image_shards.config)
    assert again.version == image_shards.manifest.version == 1
    assert {p: p.stat().st_mtime_ns for p in image_shards.shards.rglob("*")} == before


def test_changed_config_needs_overwrite(image_shards):
    from preprocessing.config import ImagePreprocessConfig

    with pytest.raises(ValueError, match=r"was written with config .* pass --overwrite"):
        preprocess_images(
            image_shards.raw, image_shards.shards, ImagePreprocessConfig(resize_to=256)
        )


def test_missing_layout_is_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="neither 'train/' nor 'val/'"):
        preprocess_images(tmp_path, tmp_path / "out")


def test_tensor_column_is_arrows_canonical_type():
    import pyarrow as pa

    from preprocessing.parquet.shards import tensor_column

    arr = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    col = tensor_column(arr)
    assert col.type == pa.fixed_shape_tensor(pa.float32(), [3, 4, 2])
    assert col.type.extension_name == "arrow.fixed_shape_tensor"
    np.testing.assert_array_equal(col.to_numpy_ndarray(), arr)
    np.testing.assert_array_equal(tensor_from_column(pa.chunked_array([col])), arr)
