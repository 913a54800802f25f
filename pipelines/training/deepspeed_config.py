"""Build the DeepSpeed config dict from the pydantic settings.

The same dict serves CPU (gloo, fp32, what runs here) and GPU (NCCL, bf16) clusters; only
the settings differ. ZeRO-3 sets ``stage3_param_persistence_threshold: 0`` so that small
parameters (LayerNorms, biases) are partitioned and gathered like the rest rather than kept
whole on every rank, and gathers 16-bit weights on save so a consolidated model can be read.
"""

from __future__ import annotations

from typing import Any

from pipelines.config.sections import DeepSpeedSettings


def build_deepspeed_config(settings: DeepSpeedSettings, world_size: int) -> dict[str, Any]:
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    zero: dict[str, Any] = {"stage": settings.zero_stage}
    if settings.zero_stage >= 2:
        zero.update({"overlap_comm": False, "contiguous_gradients": True})
    if settings.zero_stage == 3:
        zero.update(
            {
                "stage3_param_persistence_threshold": 0,
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    return {
        "train_micro_batch_size_per_gpu": settings.micro_batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "train_batch_size": settings.micro_batch_size
        * settings.gradient_accumulation_steps
        * world_size,
        "gradient_clipping": settings.gradient_clipping,
        "zero_optimization": zero,
        "bf16": {"enabled": settings.precision == "bf16"},
        "fp16": {"enabled": False},
        "steps_per_print": 10**9,  # progress goes to MLflow and the progress bar instead
        "wall_clock_breakdown": False,
        "zero_allow_untested_optimizer": True,  # a plain torch AdamW, passed in
    }
