"""Scheduled runs: incremental additions, and a driver killed midway then resumed."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pyarrow.parquet as pq

from preprocessing.config import ImagePreprocessConfig
from preprocessing.engine.manifest import read_manifest
from preprocessing.modalities.image import preprocess_images
from preprocessing.sample_data.image import write_imagenet_sample


def listed_sources(shards):
    m = read_manifest(shards)
    rows = [
        s
        for split in m.splits
        for p in m.shard_paths(split)
        for s in pq.read_table(shards / p, columns=["source"])["source"].to_pylist()
    ]
    quarantined = [
        s
        for q in m.quarantine
        for s in pq.read_table(shards / q.path, columns=["source"])["source"].to_pylist()
    ]
    return m, rows, quarantined


def test_added_files_are_processed_alone_into_a_new_version(tmp_path, ray_cluster):
    raw, shards = tmp_path / "raw", tmp_path / "shards"
    sample = write_imagenet_sample(raw, num_classes=2, train_per_class=4, val_per_class=1, seed=3)
    config = ImagePreprocessConfig(rows_per_shard=4)
    v1 = preprocess_images(raw, shards, config)
    v1_files = {p.relative_to(shards).as_posix() for p in shards.rglob("*.parquet")}

    wnid = sample.wnids[0]
    for n in range(3):  # three new good files and one new broken one
        shutil.copy(raw / f"train/{wnid}/{wnid}_1.JPEG", raw / f"train/{wnid}/extra_{n}.JPEG")
    (raw / f"val/{wnid}/broken.JPEG").write_bytes(b"\xff\xd8\xff")
    v2 = preprocess_images(raw, shards, config)

    assert (v1.version, v2.version) == (1, 2)
    assert v2.inputs_seen == v1.inputs_seen + 4
    assert v2.rows_written == v1.rows_written + 3 and v2.quarantined == v1.quarantined + 1
    new_files = {p.relative_to(shards).as_posix() for p in shards.rglob("*.parquet")} - v1_files
    assert new_files and all("-v0002" in f for f in new_files)  # old shards untouched
    m, rows, quarantined = listed_sources(shards)
    assert len(rows) == len(set(rows)) == m.rows_written  # no duplicates
    assert f"val/{wnid}/broken.JPEG" in quarantined
    assert (shards / "manifests" / "v0001.json").is_file()
    assert (shards / "manifests" / "v0002.json").is_file()
    assert preprocess_images(raw, shards, config).version == 2  # and again: nothing new


DRIVER = """
import sys
import ray
ray.init(address=sys.argv[3])
from preprocessing.config import ImagePreprocessConfig
from preprocessing.modalities.image import preprocess_images
preprocess_images(sys.argv[1], sys.argv[2], ImagePreprocessConfig(rows_per_shard=1))
"""


def test_driver_killed_midway_then_resumed_loses_and_duplicates_nothing(tmp_path, ray_cluster):
    import ray

    raw, shards = tmp_path / "raw", tmp_path / "shards"
    write_imagenet_sample(raw, num_classes=2, train_per_class=24, val_per_class=6, seed=4)
    address = ray.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(raw), str(shards), address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not list(shards.glob("train/part-*.parquet")):
        assert proc.poll() is None, "the driver ended before it wrote a shard"
        assert time.monotonic() < deadline, "no shard appeared in 120 s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver dies mid-job
    proc.wait()
    assert not (shards / "manifest.json").exists(), "the job finished before the kill"
    partial = list(shards.rglob("*.parquet"))
    assert partial  # it did write some shards, none of them published

    m = preprocess_images(raw, shards, ImagePreprocessConfig(rows_per_shard=1))
    m, rows, quarantined = listed_sources(shards)
    every_input = [p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()]
    assert Counter(rows + quarantined) == Counter(every_input)  # each input exactly once
    assert m.inputs_seen == len(every_input) == m.rows_written + m.quarantined
    on_disk = {p.relative_to(shards).as_posix() for p in shards.rglob("*.parquet")}
    assert on_disk == m.all_files()  # no unpublished leftovers
    assert not list(shards.rglob("*.tmp"))
