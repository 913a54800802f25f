"""A model that pickles as (task config, weights) and is rebuilt from them on unpickling.

Registries such as MLflow store a PyTorch model as a pickle. A pickle of the module tree
records every internal attribute, so a model logged by one version of this package breaks
when a later version adds an attribute or renames a submodule. ``PortableModel`` pickles only
its pydantic config (plain JSON-able data) and its state dict, and on unpickling runs the
task's builder again: a logged model loads under any version whose config accepts the data
(older config layouts are migrated by the configs' validators) and whose builder produces the
same state-dict keys (or renames old ones on load, see ``perceiver.modules.state_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from perceiver.builders import build
from perceiver.config import AnyTaskConfig, task_config


def center_crop(x: torch.Tensor, crop: Mapping[int, int]) -> torch.Tensor:
    """The central ``size`` positions of ``x`` along each ``axis`` of ``crop``, where ``x``
    is larger there; axes where it is not are left as they are."""
    for axis, size in crop.items():
        length = x.shape[axis]
        if length > size:
            x = x.narrow(axis, (length - size) // 2, size)
    return x


class PortableModel(nn.Module):
    """Wraps a task model built from ``config``; ``forward`` is the task model's.

    ``input_crop`` ({axis: size}) center-crops a tensor input that is larger than the model's
    input along those axes, as a pipeline's evaluation does; so a model trained on crops of
    larger stored examples takes the stored examples as they are.
    """

    def __init__(
        self,
        config: AnyTaskConfig,
        state_dict: dict[str, torch.Tensor] | None = None,
        input_crop: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.model = build(config)
        self.input_crop = {int(a): int(n) for a, n in (input_crop or {}).items()}
        if state_dict is not None:
            self.model.load_state_dict(state_dict)

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if self.input_crop and isinstance(x, torch.Tensor):
            x = center_crop(x, self.input_crop)
        return self.model(x, *args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(mode="json"),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "training": self.training,
            "input_crop": sorted(self.input_crop.items()),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        crop = dict(state.get("input_crop", ()))  # absent in models pickled before it existed
        PortableModel.__init__(self, task_config(state["config"]), state["state_dict"], crop)
        self.train(state["training"])
