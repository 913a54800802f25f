"""AdamW with the usual weight-decay exclusions, and warm-up + cosine learning rates.

Weight decay pulls weights toward zero, which is right for matrices and wrong for what sets
a scale or an offset (LayerNorm and BatchNorm weights, biases) and for learned codes that are
looked up, not multiplied (the latent array, trainable position tables and queries,
per-modality padding embeddings and mask tokens): those go in a group without decay.

Schedule: the learning rate rises linearly from ~0 to ``lr`` over ``warmup_steps`` optimizer
steps, then follows a half cosine from ``lr`` down to ``min_lr`` at ``total_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

# Leaf names of parameters that are codes, not weights (see the module docstring).
NO_DECAY_NAMES = ("latents", "table", "padding", "mask_tokens")


def decays(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    """Whether parameter ``name`` of ``module`` (its owner) gets weight decay."""
    if param.ndim < 2 or name.endswith("bias"):
        return False
    if isinstance(module, nn.LayerNorm | nn.modules.batchnorm._NormBase | nn.GroupNorm):
        return False
    return not any(part in NO_DECAY_NAMES for part in name.split("."))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Two AdamW groups: decayed weights and the rest (each parameter once, tied ones too)."""
    owners = {
        id(p): (f"{prefix}.{name}" if prefix else name, module)
        for prefix, module in model.named_modules()
        for name, p in module.named_parameters(recurse=False)
    }
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        name, module = owners[id(p)]
        (decay if decays(name, p, module) else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float) -> Callable[[int], float]:
    """LambdaLR factor of step ``s``: linear warm-up, then cosine down to ``min_ratio``."""
    if total_steps < 1 or warmup_steps < 0 or not 0.0 <= min_ratio <= 1.0:
        raise ValueError(
            f"total_steps={total_steps} must be >= 1, warmup_steps={warmup_steps} >= 0 and "
            f"min_ratio={min_ratio} in [0, 1]"
        )

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def adamw(
    model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float]
) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=betas)
