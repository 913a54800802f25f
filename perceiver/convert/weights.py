"""Copy weights from a Hugging Face Perceiver into ours by module-prefix maps.

A converter describes the correspondence as ``ModuleMap``: our module (or parameter) prefix
-> the Hugging Face one; parameter leaf names (weight, bias, running_mean, ...) are equal.
``copy_weights`` fills every one of our weights, checks shapes, and fails if a Hugging Face
weight is left over, so a conversion cannot silently drop or invent parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# our module prefix -> Hugging Face module prefix; leaf names (weight, bias, ...) are equal.
ModuleMap = dict[str, str]

_CROSS_ATTENTION_MODULES = {
    "q_norm": "attention.self.layernorm1",
    "kv_norm": "attention.self.layernorm2",
    "attention.q_proj": "attention.self.query",
    "attention.k_proj": "attention.self.key",
    "attention.v_proj": "attention.self.value",
    "attention.o_proj": "attention.output.dense",
    "mlp.0": "layernorm",
    "mlp.1": "mlp.dense1",
    "mlp.3": "mlp.dense2",
}
_SELF_ATTENTION_MODULES = {
    ("norm" if ours == "q_norm" else ours): hf
    for ours, hf in _CROSS_ATTENTION_MODULES.items()
    if ours != "kv_norm"
}


def layer_map(ours: str, hf: str, cross: bool) -> ModuleMap:
    table = _CROSS_ATTENTION_MODULES if cross else _SELF_ATTENTION_MODULES
    return {f"{ours}.{o}": f"{hf}.{h}" for o, h in table.items()}


# -- weight copy ---------------------------------------------------------------------

# Weights whose layout differs: our key suffix -> reshape of the Hugging Face tensor.
_RESHAPES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # nn.Conv2d 1x1 (C_out, C_in, 1, 1) -> nn.Linear (C_out, C_in)
    "input_adapter.conv1x1.weight": lambda w: w.reshape(w.shape[0], -1),
}


def _hf_key(key: str, modules: ModuleMap) -> str:
    """The Hugging Face state-dict key of our ``key``: its longest mapped prefix, renamed."""
    parts = key.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in modules:
            return ".".join([modules[prefix], *parts[cut:]])
    raise ValueError(f"no Hugging Face weight is mapped to {key!r}")


def copy_weights(model: nn.Module, hf_model: nn.Module, modules: ModuleMap) -> None:
    """Load every weight of ``model`` from ``hf_model``; each HF weight must be used."""
    hf_state = hf_model.state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, ours in model.state_dict().items():
        hf_key = _hf_key(key, modules)
        if hf_key not in hf_state:
            raise ValueError(f"{key!r} maps to {hf_key!r}, which the model does not have")
        value = hf_state[hf_key]
        reshape = next((fn for suffix, fn in _RESHAPES.items() if key.endswith(suffix)), None)
        if reshape is not None:
            value = reshape(value)
        if value.shape != ours.shape:
            raise ValueError(
                f"{hf_key!r} has shape {tuple(value.shape)}, {key!r} needs {tuple(ours.shape)}"
            )
        state[key] = value.detach().clone()
        used.add(hf_key)
    unused = sorted(set(hf_state) - used)
    if unused:
        raise ValueError(f"weights of the Hugging Face model not converted: {unused}")
    model.load_state_dict(state, strict=True)
