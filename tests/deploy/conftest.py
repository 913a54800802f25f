"""tests/deploy needs the KubeRay CRDs beside the checkout (shared/kuberay-crds/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy import k8s_schema as ks


@pytest.fixture(scope="session", autouse=True)
def kuberay_crds() -> Path:
    try:
        return ks.crd_dir()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
