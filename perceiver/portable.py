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

from typing import Any

import torch
from torch import nn

from perceiver.builders import build
from perceiver.config import AnyTaskConfig, task_config


class PortableModel(nn.Module):
    """Wraps a task model built from ``config``; ``forward`` is the task model's."""

    def __init__(
        self, config: AnyTaskConfig, state_dict: dict[str, torch.Tensor] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.model = build(config)
        if state_dict is not None:
            self.model.load_state_dict(state_dict)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(mode="json"),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "training": self.training,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        PortableModel.__init__(self, task_config(state["config"]), state["state_dict"])
        self.train(state["training"])
