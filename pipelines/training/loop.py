"""The function every Ray Train worker runs: one DeepSpeed training loop for every task.

The task (``pipelines.tasks``) supplies the model, the augmentation, the loss, the records
and metrics of validation; this loop never looks at which task it runs. Per worker:

1. Build the model, AdamW (``optim``) with warm-up + cosine learning rates, and the DeepSpeed
   engine (ZeRO 0-3, fp32 or bf16, clipping and accumulation from the config).
2. Restore a checkpoint when Ray Train hands one back (a restarted worker group, a run
   resumed by name): engine, data cursor, optimizer step, RNG state (``state``).
3. Per epoch, read the planned batches of this rank (``data``; augmentation on the reader
   thread), step the engine, and after each batch all-reduce the loss: a non-finite loss
   makes every rank raise at that step (the last good checkpoint stays; a worker-group
   restart, if ``max_failures`` allows one, resumes from it). Every
   ``checkpoint_every_steps`` optimizer steps, and at the end of each epoch, every rank
   saves its ZeRO shard, then a barrier, then ``ray.train.report`` (which is itself a
   barrier every rank reaches equally often).
4. Every ``eval_every_epochs`` epochs, all ranks score their part of the val split, the
   records are gathered and rank 0 computes the metrics; they go with the epoch's report, so
   ``CheckpointConfig`` keeps the best checkpoints by the task's metric.
5. After the last epoch the full weights are gathered (a collective under ZeRO-3) and rank 0
   logs the model to MLflow. MLflow is called on rank 0 only.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.training.data import ShardFile, ShardReader, batches, plan_epoch
from pipelines.training.memory import live_tensor_mib, peak_rss_mib
from pipelines.training.progress import ProgressFile
from pipelines.training.state import TrainState, restore, save

NONFINITE = "non-finite loss"  # starts the error every rank raises when the loss diverges


def _all_reduce(values: list[float], op: str = "sum") -> list[float]:
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t.tolist()


def _full_state_dict(engine: Any, zero_stage: int) -> dict[str, torch.Tensor]:
    """All weights, fp32 on CPU, on every rank (a collective under ZeRO-3)."""
    import deepspeed

    module = engine.module
    if zero_stage == 3:
        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
            return {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}
    return {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}


class Worker:
    """One rank's view of the run: config, task, engine, data, tracker."""

    def __init__(self, loop_config: dict[str, Any]) -> None:
        import ray.train

        from pipelines.tasks import pipeline_config, task_for

        self.cfg = pipeline_config(loop_config["pipeline"])
        self.task = task_for(self.cfg)
        self.loop_config = loop_config
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.shards = Path(loop_config["shards"])
        self.train_files = [ShardFile(**f) for f in loop_config["train_files"]]
        self.val_files = [ShardFile(**f) for f in loop_config["val_files"]]
        train, ds = self.cfg.train, self.cfg.deepspeed
        self.micro, self.accum = ds.micro_batch_size, ds.gradient_accumulation_steps
        planned = plan_epoch(self.train_files, train.seed, 0, 0, self.world, self.micro)
        # Whole optimizer steps per epoch: no accumulation carries over an epoch's end.
        self.batches_per_epoch = planned.num_batches // self.accum * self.accum
        if self.batches_per_epoch == 0:
            rows = sum(f.rows for f in self.train_files)
            raise ValueError(
                f"the train split's {rows} rows give no optimizer step per epoch with "
                f"{self.world} workers x micro_batch_size {self.micro} x "
                f"gradient_accumulation_steps {self.accum}"
            )
        self.steps_per_epoch = self.batches_per_epoch // self.accum
        self.total_steps = self.steps_per_epoch * train.epochs
        torch.set_num_threads(max(1, int(train.cpus_per_worker)))
        torch.manual_seed(train.seed + self.rank)
        np.random.seed(train.seed + self.rank)
        self.engine = self._engine()
        self.state = TrainState()
        self.tracker: Any = None

    def _engine(self) -> Any:
        import deepspeed

        from pipelines.training.deepspeed_config import build_deepspeed_config
        from pipelines.training.optim import adamw, warmup_cosine

        opt = self.cfg.optimizer
        model = self.task.build_model()
        optimizer = adamw(model, opt.lr, opt.weight_decay, opt.betas)
        schedule = warmup_cosine(opt.warmup_steps, self.total_steps, opt.min_lr / opt.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        engine, _, _, _ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=build_deepspeed_config(self.cfg.deepspeed, self.world),
        )
        return engine

    # -- checkpoints and reports -------------------------------------------------------

    def restore(self) -> bool:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return False
        with checkpoint.as_directory() as directory:
            self.state = restore(self.engine, Path(directory), self.rank)
        return True

    def report(self, metrics: dict[str, Any], checkpoint: bool = True) -> None:
        """Every rank: save its shard, meet at a barrier, report (with the checkpoint)."""
        import ray.train
        import torch.distributed as dist
        from ray.train import Checkpoint

        if self.tracker is not None:
            self.tracker.flush()  # every step up to this checkpoint is in the run before it
        if not checkpoint:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            save(self.engine, self.state, self.rank, Path(directory))
            dist.barrier()
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(directory))

    # -- validation -----------------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        """Every rank scores its part of the val split; rank 0's metrics, on every rank."""
        import torch.distributed as dist

        from pipelines.tasks.base import to_tensors

        plan = plan_epoch(
            self.val_files, 0, 0, self.rank, self.world, self.micro, shuffle=False, drop_last=False
        )
        rounds = int(_all_reduce([plan.num_batches], op="max")[0])
        reader = ShardReader(self.shards, self.val_files, list(self.task.columns))
        module = self.engine.module
        module.eval()
        records: list[dict[str, np.ndarray]] = []
        dummy = None
        with torch.no_grad():
            for index in range(rounds):
                own = index < plan.num_batches
                rows = plan.batch_rows(index) if own else None
                if rows is None:  # ZeRO-3 needs every rank's forward: score a batch, drop it
                    rows = dummy if dummy is not None else np.array([[0, 0]], dtype=np.int64)
                batch = self.task.eval_inputs(reader.read(rows))
                result = self.task.predict(module, to_tensors(batch, self.engine.device))
                if own:
                    records.append(result)
                    dummy = rows
        module.train()
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, records)
        metrics: list[Any] = [None]
        if self.rank == 0:
            parts = [r for rank_records in gathered for r in rank_records]
            merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            metrics = [self.task.metrics(merged)]
        dist.broadcast_object_list(metrics, src=0)
        return dict(metrics[0])

    # -- training --------------------------------------------------------------------------

    def run(self) -> None:
        from pipelines.tasks.base import to_tensors

        self._record_pid()
        resumed = self.restore()
        run_id = self.loop_config.get("mlflow_run_id")
        if self.rank == 0 and run_id:
            from pipelines.tracking.rank_zero import RankZeroTracker

            self.tracker = RankZeroTracker(
                self.loop_config["tracking_uri"], run_id, self.cfg.train.system_metrics_seconds
            )
            if not resumed:
                self.tracker.log_params(self.cfg)
        train = self.cfg.train
        positions = self.task.input_positions()
        samples_per_step = self.micro * self.accum * self.world
        bar = self._progress_bar()
        try:
            for epoch in range(self.state.epoch, train.epochs):
                self._epoch(epoch, samples_per_step, positions, to_tensors, bar)
            self._log_model()
        finally:
            if self.tracker is not None:
                self.tracker.close()

    def _record_pid(self) -> None:
        """``<run>/workers/rank<r>.pid``: which process is which rank (for operators, and the
        test that kills one)."""
        path = self.loop_config.get("progress_file")
        if path:
            folder = Path(path).parent / "workers"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"rank{self.rank}.pid").write_text(f"{os.getpid()}\n")

    def _progress_bar(self) -> Any:
        """Rank 0 writes its progress where the driver draws its bar from (``progress``)."""
        path = self.loop_config.get("progress_file")
        if self.rank != 0 or not path:
            return None
        return ProgressFile(Path(path), self.total_steps)

    def _epoch(
        self, epoch: int, samples_per_step: int, positions: int, to_tensors: Any, bar: Any
    ) -> None:
        """One epoch from the cursor; FloatingPointError on every rank if the loss diverges."""
        import torch.distributed as dist

        train, engine = self.cfg.train, self.engine
        plan = plan_epoch(
            self.train_files,
            train.seed,
            epoch,
            self.rank,
            self.world,
            self.micro,
            shuffle_rows=train.shuffle_rows,
        )
        plan = type(plan)(plan.rows, plan.batch_size, self.batches_per_epoch)
        start = self.state.cursor if epoch == self.state.epoch else 0
        reader = ShardReader(self.shards, self.train_files, list(self.task.columns))

        def augment(index: int, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            rng = np.random.default_rng([train.seed, epoch, self.rank, index])
            return self.task.train_inputs(batch, rng)

        feed = batches(reader, plan, start, augment, train.prefetch_batches)
        engine.train()
        epoch_started = step_started = time.perf_counter()
        sums: dict[str, float] = {"loss": 0.0, "samples": 0.0}
        timing = dict.fromkeys(("forward", "loss_all_reduce", "backward", "optimizer"), 0.0)
        window_loss = 0.0
        tensor_mib = 0.0  # the model states, measured between the epoch's last backward and step
        try:
            for index, batch in feed:
                tensors = to_tensors(batch, engine.device)
                generator = torch.Generator().manual_seed(
                    int(
                        np.random.default_rng([train.seed, epoch, self.rank, index]).integers(2**62)
                    )
                )
                began = time.perf_counter()
                loss, stats = self.task.loss(engine, tensors, generator)
                forward_done = time.perf_counter()
                finite = bool(torch.isfinite(loss))
                total, bad = _all_reduce(
                    [float(loss.detach()) if finite else 0.0, 0.0 if finite else 1.0]
                )
                if bad:  # every rank sees it at the same step, so every rank stops here
                    raise FloatingPointError(
                        f"{NONFINITE}: the training loss is not finite at optimizer step "
                        f"{self.state.global_step + 1} (epoch {epoch + 1})"
                    )
                reduced_at = time.perf_counter()
                engine.backward(loss)
                backward_done = time.perf_counter()
                if index == plan.num_batches - 1:  # once an epoch, outside the step's time
                    tensor_mib = live_tensor_mib()
                    # Ranks leave together: one rank's longer count is not waited out in the
                    # next step's collectives (which would count as that step's time).
                    dist.barrier()
                    measured = time.perf_counter() - backward_done
                    step_started += measured
                    epoch_started += measured
                stepping = time.perf_counter()
                engine.step()
                timing["forward"] += forward_done - began
                timing["loss_all_reduce"] += reduced_at - forward_done
                timing["backward"] += backward_done - reduced_at
                timing["optimizer"] += time.perf_counter() - stepping
                n = len(next(iter(batch.values())))
                sums["loss"] += float(loss.detach()) * n
                sums["samples"] += n
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value
                window_loss += total / self.world
                self.state.cursor = index + 1
                if engine.global_steps == self.state.global_step:
                    continue  # inside a gradient-accumulation window
                self.state.global_step = int(engine.global_steps)
                now = time.perf_counter()
                seconds, step_started = now - step_started, now
                step_metrics = {
                    "train_loss": window_loss / self.accum,
                    "learning_rate": float(engine.get_lr()[0]),
                    "samples_per_second": samples_per_step / seconds,
                    "input_positions_per_second": samples_per_step * positions / seconds,
                }
                window_loss = 0.0
                if bar is not None:
                    bar.write(self.state.global_step, epoch + 1, step_metrics["train_loss"])
                if self.tracker and self.state.global_step % train.log_every_steps == 0:
                    self.tracker.log_step(self.state.global_step, step_metrics)
                every = train.checkpoint_every_steps
                if (
                    every
                    and self.state.global_step % every == 0
                    and self.state.cursor < plan.num_batches
                ):
                    self.report(
                        {"epoch": epoch, "step": self.state.global_step, self.task.metric: math.nan}
                    )
        finally:
            feed.close()
        elapsed = time.perf_counter() - epoch_started
        keys = sorted(sums)
        totals = _all_reduce(
            [*(sums[k] for k in keys), *timing.values(), feed.wait_seconds, elapsed]
        )
        reduced = dict(zip(keys, totals, strict=False))
        samples = max(reduced["samples"], 1.0)
        all_elapsed = max(totals[-1], 1e-9)
        metrics: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": self.state.global_step,
            "epoch_train_loss": reduced["loss"] / samples,
            "data_wait_fraction": totals[-2] / all_elapsed,
            "epoch_seconds": elapsed,
            "worker_peak_rss_mib": _all_reduce([peak_rss_mib()], op="max")[0],
            "worker_tensor_mib": _all_reduce([tensor_mib], op="max")[0],
        }
        # Where the workers' time went (the rest: logging, checkpoints, the reader's hand-off).
        for name, seconds in zip(timing, totals[len(keys) : len(keys) + len(timing)], strict=True):
            metrics[f"time_{name}_fraction"] = seconds / all_elapsed
        metrics |= {k: v / samples for k, v in reduced.items() if k.startswith("train_")}
        every = train.eval_every_epochs
        if every and ((epoch + 1) % every == 0 or epoch + 1 == train.epochs):
            metrics |= self.validate()
        metrics.setdefault(self.task.metric, math.nan)
        if self.tracker:
            self.tracker.log_epoch(
                self.state.global_step,
                {k: v for k, v in metrics.items() if k not in ("epoch", "step")},
            )
        self.state.history.append(dict(metrics))
        self.state.epoch, self.state.cursor = epoch + 1, 0
        self.report({**metrics, "history": self.state.history})

    def _log_model(self) -> None:
        """Gather the full weights (every rank under ZeRO-3) and log the model on rank 0."""
        import torch.distributed as dist

        from perceiver.portable import PortableModel

        zero = self.cfg.deepspeed.zero_stage
        state_dict = None
        if zero == 3 or self.tracker:
            state_dict = _full_state_dict(self.engine, zero)
        if self.tracker and state_dict is not None:
            model = PortableModel(self.cfg.model, state_dict, self.task.input_crop()).eval()
            reader = ShardReader(self.shards, self.val_files, list(self.task.columns))
            rows = np.array([[0, i] for i in range(min(2, self.val_files[0].rows))])
            example = self.task.model_inputs(reader.read(rows))
            self.tracker.log_model(model, example, self.loop_config.get("label_map"))
        dist.barrier()


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    Worker(loop_config).run()
