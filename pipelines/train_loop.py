"""The function every Ray Train worker runs: DeepSpeed ZeRO training of one model.

Per epoch: stream this worker's shard of the train split (Ray Data), step the DeepSpeed
engine, then every rank saves its ZeRO shard into a local folder, all ranks meet at a
barrier, and each calls ``ray.train.report`` with that folder, which Ray Train merges into
one checkpoint. MLflow is touched on rank 0 only. After the last epoch the full weights are
gathered (a collective under ZeRO-3) and rank 0 logs the model to MLflow.

Resume: when Ray Train hands back a checkpoint (a restarted worker group, or a run restored
by name), the engine loads it and training continues at the next epoch.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from perceiver.builders import image_classifier
from perceiver.portable import PortableModel
from pipelines.config import PipelineConfig
from pipelines.deepspeed_config import build_deepspeed_config

CHECKPOINT_TAG = "checkpoint"
STATE_FILE = "train_state.json"


def _lr_lambda(warmup_steps: int):
    def fn(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0

    return fn


def _full_state_dict(engine: Any, zero_stage: int) -> dict[str, torch.Tensor]:
    """All weights, in fp32 on CPU, on every rank (a collective under ZeRO-3)."""
    import deepspeed

    module = engine.module
    if zero_stage == 3:
        params = list(module.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            return {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}
    return {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}


def _all_reduce_sum(values: list[float]) -> list[float]:
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import deepspeed
    import ray.train
    import torch.distributed as dist
    from ray.train import Checkpoint

    cfg = PipelineConfig.model_validate(loop_config["pipeline"])
    run_id: str | None = loop_config.get("mlflow_run_id")
    ctx = ray.train.get_context()
    rank, world_size = ctx.get_world_rank(), ctx.get_world_size()
    threads = max(1, int(cfg.train.cpus_per_worker))
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.train.seed)

    model = image_classifier(cfg.model)
    opt = cfg.optimizer
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay, betas=opt.betas
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(opt.warmup_steps))
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        config=build_deepspeed_config(cfg.deepspeed, world_size),
    )

    start_epoch, global_step = 0, 0
    history: list[dict[str, float]] = []  # per-epoch metrics, carried through checkpoints
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            engine.load_checkpoint(ckpt_dir, tag=CHECKPOINT_TAG)
            state = json.loads((Path(ckpt_dir) / STATE_FILE).read_text())
        start_epoch, global_step = state["epoch"], engine.global_steps
        history = state["history"]

    tracker = None
    if rank == 0 and run_id:
        from pipelines.tracking import RankZeroTracker

        tracker = RankZeroTracker(loop_config["tracking_uri"], run_id)
        if checkpoint is None:
            tracker.log_params(cfg)

    shard = ray.train.get_dataset_shard("train")
    micro = cfg.deepspeed.micro_batch_size
    batches_per_epoch = math.ceil(int(loop_config.get("train_rows", 0)) // world_size / micro)
    bar = None
    if rank == 0:  # Ray draws a worker's tqdm_ray bar on the driver's terminal
        from ray.experimental.tqdm_ray import tqdm

        bar = tqdm(
            desc=f"train epoch {start_epoch + 1}/{cfg.train.epochs}",
            total=batches_per_epoch * (cfg.train.epochs - start_epoch) or None,
            unit="batch",
        )
    for epoch in range(start_epoch, cfg.train.epochs):
        engine.train()
        sums = [0.0, 0.0, 0.0]  # loss * n, correct, n
        started = time.perf_counter()
        for batch in shard.iter_torch_batches(
            batch_size=micro,
            dtypes={"image": torch.uint8, "label": torch.int64},
            local_shuffle_buffer_size=4 * micro,
            local_shuffle_seed=cfg.train.seed + epoch,
        ):
            images = batch["image"].to(engine.device)  # (B, H, W, 3) uint8
            labels = batch["label"].to(engine.device)  # (B,)
            logits = engine(images)  # (B, num_classes); the model scales uint8 itself
            loss = F.cross_entropy(logits.float(), labels)
            engine.backward(loss)
            engine.step()
            n = labels.numel()
            sums[0] += loss.item() * n
            sums[1] += (logits.argmax(-1) == labels).sum().item()
            sums[2] += n
            if bar is not None:
                bar.update(1)
            if engine.global_steps != global_step:  # an optimizer step happened
                global_step = engine.global_steps
                if tracker and global_step % cfg.train.log_every_steps == 0:
                    tracker.log_step(
                        global_step, loss.item(), float(scheduler.get_last_lr()[0]), epoch
                    )
        loss_sum, correct, count = _all_reduce_sum(sums)
        metrics = {
            "epoch": epoch + 1,
            "global_step": global_step,
            "train_loss": loss_sum / max(count, 1),
            "train_top1": correct / max(count, 1),
            "train_samples": int(count),
            "epoch_seconds": time.perf_counter() - started,
        }
        history.append(dict(metrics))
        if not math.isfinite(metrics["train_loss"]):
            raise FloatingPointError(f"train_loss is {metrics['train_loss']} at epoch {epoch + 1}")
        if bar is not None and epoch + 1 < cfg.train.epochs:
            bar.set_description(
                f"train epoch {epoch + 2}/{cfg.train.epochs} "
                f"(last loss {metrics['train_loss']:.3f})"
            )
        if rank == 0:
            print(
                f"epoch {epoch + 1}/{cfg.train.epochs}: train_loss {metrics['train_loss']:.4f}, "
                f"train_top1 {metrics['train_top1']:.3f}, {int(count)} samples, "
                f"step {global_step}, {metrics['epoch_seconds']:.1f} s",
                flush=True,
            )
        if tracker:
            tracker.log_epoch(metrics)
        with tempfile.TemporaryDirectory() as ckpt_dir:
            engine.save_checkpoint(ckpt_dir, tag=CHECKPOINT_TAG)  # every rank: its ZeRO shard
            if rank == 0:
                (Path(ckpt_dir) / STATE_FILE).write_text(
                    json.dumps({"epoch": epoch + 1, "history": history})
                )
            dist.barrier()
            ray.train.report(
                {**metrics, "history": history}, checkpoint=Checkpoint.from_directory(ckpt_dir)
            )

    if bar is not None:
        bar.close()
    # Under ZeRO-3 gathering the weights is a collective, so every rank takes part; below
    # stage 3 every rank holds them whole and only the rank that logs copies them.
    state_dict = None
    if cfg.deepspeed.zero_stage == 3 or tracker:
        state_dict = _full_state_dict(engine, cfg.deepspeed.zero_stage)
    if tracker and state_dict is not None:
        final = PortableModel(cfg.model, state_dict)  # pickles as (config, weights)
        tracker.log_model(final.eval(), cfg, loop_config.get("label_map"))
    dist.barrier()
