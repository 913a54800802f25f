"""constraints.txt: the tested dependency set that `make install` and the image install with."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([\w.+!]+)", line)
        assert m, f"constraints.txt: not an exact 'name==version' pin: {line!r}"
        pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_constraints_satisfy_every_declared_requirement() -> None:
    pins = _constraints()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for text in declared:
        req = Requirement(text)
        name = req.name.lower().replace("_", "-")
        if name == "torch":  # left to pyproject's own pin: +cpu and +cuXXX builds both match it
            assert name not in pins
            continue
        assert name in pins, f"constraints.txt has no pin for {req.name} (pyproject.toml: {text})"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {text}"
        )
    assert (pins["ray"], pins["deepspeed"], pins["mlflow"]) == ("2.60.0", "0.19.8", "3.17.2")


def test_make_install_and_the_image_install_with_the_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"pip install -c constraints\.txt -e '\.\[dev\]'", makefile)
    assert re.search(r"^\$\(STAMP\):.*\bconstraints\.txt\b", makefile, re.M)  # reinstall on change
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert "pip install -c /tmp/src/constraints.txt /tmp/src" in dockerfile
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!constraints.txt" in ignore
