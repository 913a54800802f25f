"""Shared fixtures: one local Ray cluster, one real MLflow server, one sample dataset.

Each engine is real and started once per session: a ``ray start --head`` cluster with token
auth and the job API (2 CPUs), an ``mlflow
server`` process on 127.0.0.1 (sqlite backend, temp artefact root, stopped by its pid), and
a generated ImageNet-layout folder preprocessed once by the real Ray Data job.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import MlflowServer, free_port

SHARED_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    if not SHARED_SAMPLES.is_dir():
        pytest.fail(f"{SHARED_SAMPLES} is missing: CI keeps shared/ beside the checkout")
    return SHARED_SAMPLES


@dataclass
class RayHead:
    """The session's Ray cluster: a ``ray start --head`` process with token auth."""

    gcs_address: str  # for ray.init and RAY_ADDRESS
    job_api: str  # the dashboard's http URL, for the job API
    token: str
    pid: int
    temp_dir: Path


def pytest_configure(config: pytest.Config) -> None:
    """Token auth for every Ray process of the session (set before Ray is imported); the
    session's own cluster, not a developer's RAY_ADDRESS."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # nor Ray Data's Prometheus poller thread
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)


def _wait_for_job_api(url: str, token: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    request = urllib.request.Request(
        f"{url}/api/version", headers={"Authorization": f"Bearer {token}"}
    )
    while True:
        if proc.poll() is not None:
            pytest.fail(f"ray start --head exited with {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(request, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the Ray head's job API did not answer in 180 s: {log.read_text()}")
        time.sleep(1)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """One local Ray cluster for the whole session, started as users start one:
    ``ray start --head`` with ``RAY_AUTH_MODE=token`` and a known token, on 127.0.0.1 at free
    ports, with the dashboard (the job API). Stopped by its process group, never ``ray stop``.
    The test process and every CLI subprocess connect to it through ``RAY_ADDRESS``."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: socket paths
    ports = [free_port() for _ in range(7)]
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    log = temp_dir / "head.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(Path(venv_bin) / "ray"),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={ports[0]}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={ports[1]}",
                f"--dashboard-agent-listen-port={ports[2]}",
                f"--dashboard-agent-grpc-port={ports[3]}",
                f"--metrics-export-port={ports[4]}",
                f"--runtime-env-agent-port={ports[5]}",
                f"--ray-client-server-port={ports[6]}",
                "--num-cpus=2",
                f"--temp-dir={temp_dir}",
                "--disable-usage-stats",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    head = RayHead(
        gcs_address=f"127.0.0.1:{ports[0]}",
        job_api=f"http://127.0.0.1:{ports[1]}",
        token=os.environ["RAY_AUTH_TOKEN"],
        pid=proc.pid,
        temp_dir=temp_dir,
    )
    try:
        _wait_for_job_api(head.job_api, head.token, proc, log)
        os.environ["RAY_ADDRESS"] = head.gcs_address
        yield head
    finally:
        os.environ.pop("RAY_ADDRESS", None)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)  # its raylet and GCS may take 30 s to drain; nothing to keep
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster(ray_head: RayHead) -> Iterator[None]:
    """This process connected to the session's cluster."""
    import ray

    if not ray.is_initialized():
        ray.init(address=ray_head.gcs_address, log_to_driver=True)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1; yields its http URI."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server.uri


@dataclass
class PreprocessedImages:
    raw: Path
    shards: Path
    sample: object  # preprocessing.sample_data.image.SampleDataset
    extra: dict[str, str]  # kind -> source of the copied shared samples
    manifest: object
    config: object


@pytest.fixture(scope="session")
def image_shards(
    tmp_path_factory: pytest.TempPathFactory, ray_cluster: None, shared_samples: Path
) -> PreprocessedImages:
    """Generated sample (3 classes) + the real CMYK/grayscale JPEGs, preprocessed once."""
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.modalities.image import preprocess_images
    from preprocessing.sample_data.image import write_imagenet_sample

    root = tmp_path_factory.mktemp("images")
    raw = root / "raw"
    sample = write_imagenet_sample(raw, num_classes=3, train_per_class=8, val_per_class=3, seed=1)
    extra = {}
    for name, kind in (("pil_sample_cmyk.jpg", "real_cmyk"), ("hopper_gray.jpg", "real_gray")):
        dest = raw / "train" / sample.wnids[1] / name
        shutil.copy(shared_samples / "images" / name, dest)
        extra[kind] = dest.relative_to(raw).as_posix()
    (raw / "train" / sample.wnids[0] / "notes.txt").write_text("not an image")
    extra["text"] = f"train/{sample.wnids[0]}/notes.txt"
    shards = root / "shards"
    config = ImagePreprocessConfig(rows_per_shard=8)
    manifest = preprocess_images(raw, shards, config)
    return PreprocessedImages(raw, shards, sample, extra, manifest, config)


@pytest.fixture(scope="session")
def toy_shards(tmp_path_factory: pytest.TempPathFactory, ray_cluster: None) -> Path:
    """A learnable 2-class split (distinct hues) for the training tests."""
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.modalities.image import preprocess_images
    from preprocessing.sample_data.image import write_imagenet_sample

    root = tmp_path_factory.mktemp("toy")
    write_imagenet_sample(root / "raw", num_classes=2, train_per_class=16, val_per_class=6, seed=2)
    preprocess_images(root / "raw", root / "shards", ImagePreprocessConfig(rows_per_shard=16))
    return root / "shards"
