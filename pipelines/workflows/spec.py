"""A workflow file: which steps run, on which pipeline config, for which registered model.

```yaml
name: image-nightly                 # names the workflow's runs in MLflow
config: image_classification.yaml   # a pipeline config: a path (relative to this file) or a
set: [data.shards=/mnt/shared/shards/imagenet]   # shipped config's name; KEY=VALUE overrides
model_name: perceiver-image_classification       # default: perceiver-<task>
retrain: new_data                   # or always
steps:
  - {kind: preprocess, input: /mnt/shared/raw/imagenet}
  - {kind: train}
  - {kind: evaluate}
  - {kind: register}
  - {kind: promote, margin: 0.005}
```

Validated with pydantic (unknown keys refused) together with the pipeline config it names,
so a bad workflow fails at load, before anything runs. The preprocess ``input`` is relative
to the workflow file; ``data.shards``, as in every command, to the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from perceiver.config.base import StrictModel
from pipelines.config.loader import ConfigError

BUILTIN_DIR = Path(__file__).resolve().parent
ORDER = ("preprocess", "train", "evaluate", "register", "promote")
NEEDS = {"evaluate": "train", "register": "train", "promote": "register"}


class PreprocessStep(StrictModel):
    """Preprocess a raw folder into the config's ``data.shards`` (incremental: only inputs
    the shards do not hold yet are decoded; a new manifest version is published if any)."""

    kind: Literal["preprocess"]
    input: Path = Field(description="the raw folder, as the cluster sees it")


class TrainStep(StrictModel):
    """Train the config on its shards (Ray Train + DeepSpeed); logs an MLflow run."""

    kind: Literal["train"]


class EvaluateStep(StrictModel):
    """Score the trained model on a split and log metrics and pictures to its run."""

    kind: Literal["evaluate"]
    split: str | None = Field(None, description="default: the config's data.val_split")


class RegisterStep(StrictModel):
    """Register the trained model as a new version with the alias ``challenger``."""

    kind: Literal["register"]


class PromoteStep(StrictModel):
    """Score challenger and champion together; move the alias if the challenger wins."""

    kind: Literal["promote"]
    margin: float = Field(0.0, ge=0, description="how much better the challenger must be")
    alias: str = "champion"


Step = Annotated[
    PreprocessStep | TrainStep | EvaluateStep | RegisterStep | PromoteStep,
    Field(discriminator="kind"),
]


class WorkflowConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    config: str = Field(description="pipeline config: a path, or a shipped config's name")
    set: list[str] = Field(default_factory=list, description="KEY=VALUE config overrides")
    model_name: str | None = Field(None, description="default: perceiver-<task>")
    experiment: str = Field("perceiver-workflows", description="MLflow experiment of its runs")
    retrain: Literal["new_data", "always"] = Field(
        "new_data",
        description="new_data: stop with 'no new data' when the shards are those the last "
        "finished run of this workflow trained on; always: run every step not done yet",
    )
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _order(self) -> WorkflowConfig:
        kinds = [s.kind for s in self.steps]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"each step kind may appear once, got {kinds}")
        if kinds != sorted(kinds, key=ORDER.index):
            raise ValueError(f"steps must run in the order {list(ORDER)}, got {kinds}")
        for kind, needed in NEEDS.items():
            if kind in kinds and needed not in kinds:
                raise ValueError(f"a {kind} step needs a {needed} step before it")
        return self

    def step_names(self) -> list[str]:
        return [s.kind for s in self.steps]


def resolve_workflow_path(path: Path | str) -> Path:
    """A workflow file, or the name of a shipped one (``scheduled`` / ``scheduled.yaml``)."""
    p = Path(path)
    if p.is_file():
        return p
    builtin = BUILTIN_DIR / f"{p.name.removesuffix('.yaml')}.yaml"
    if len(p.parts) == 1 and builtin.is_file():
        return builtin
    shipped = sorted(q.name for q in BUILTIN_DIR.glob("*.yaml"))
    raise ConfigError(f"workflow file {str(path)!r} not found (shipped workflows: {shipped})")


def _errors(source: str, exc: ValidationError) -> str:
    lines = [f"invalid workflow {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


class Workflow:
    """A validated workflow with its pipeline config loaded and its paths made absolute."""

    def __init__(self, spec: WorkflowConfig, pipeline: Any, source: str):
        self.spec = spec
        self.pipeline = pipeline
        self.source = source

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model_name(self) -> str:
        return self.spec.model_name or f"perceiver-{self.pipeline.task}"

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.model_dump(mode="json"),
            "pipeline": self.pipeline.model_dump(mode="json"),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Workflow:
        from pipelines.tasks import pipeline_config

        spec = WorkflowConfig.model_validate(data["spec"])
        return cls(spec, pipeline_config(data["pipeline"]), data["source"])


def load_workflow(
    path: Path | str, overrides: list[str] | None = None, input_dir: Path | None = None
) -> Workflow:
    """Load and validate a workflow and its pipeline config; ``overrides`` (``--set``) go
    after the file's own ``set``; ``input_dir`` replaces the preprocess step's input."""
    from pipelines.config.loader import read_yaml
    from pipelines.tasks import load_config

    file = resolve_workflow_path(path)
    tree = read_yaml(file)
    try:
        spec = WorkflowConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_errors(str(file), exc)) from exc
    here = file.resolve().parent
    steps = []
    for step in spec.steps:
        if isinstance(step, PreprocessStep):  # the file's paths are relative to the file
            raw = Path(input_dir).resolve() if input_dir is not None else here / step.input
            step = step.model_copy(update={"input": raw.resolve()})
        steps.append(step)
    spec = spec.model_copy(update={"steps": steps, "set": [*spec.set, *(overrides or [])]})
    config = here / spec.config
    pipeline = load_config(config if config.is_file() else spec.config, spec.set)
    shards = Path(pipeline.data.shards).resolve()  # as every command: relative to the cwd
    pipeline = pipeline.model_copy(
        update={"data": pipeline.data.model_copy(update={"shards": shards})}
    )
    return Workflow(spec, pipeline, str(file))


def dump_yaml(workflow: Workflow) -> str:
    return yaml.safe_dump(workflow.spec.model_dump(mode="json"), sort_keys=False)
