"""Memory of the input cross-attention with and without chunking over the inputs.

``CrossAttentionLayer(kv_chunk_size=K)`` normalises, projects and attends to the inputs K
positions at a time and merges the chunks exactly (``perceiver.modules.attention.kv_chunked``).
This script measures what that buys at hundreds of thousands of input positions: the peak
resident-set growth of one training step (forward, a scalar loss, backward into the layer's
parameters) and of one inference forward (``torch.inference_mode``), unchunked and chunked,
each in a fresh subprocess (glibc ``MALLOC_MMAP_THRESHOLD_=65536`` so freed tensors go back
to the OS) after one warm-up step on 4096 inputs (one-time costs such as lazy imports are
not the step's). The inputs exist before the measurement starts (they are the data, not
the step's growth). Also the step time, chunked / unchunked, from the same subprocesses.

    .venv/bin/python -m benchmarks.chunked_attention_memory --inputs 65536 262144 524288
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks._memory import peak_growth
from benchmarks._record import record

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
WARM_UP = 4096  # inputs of the warm-up step


def measure(args: argparse.Namespace) -> dict[str, float]:
    """In this process: peak RSS growth (bytes) and time (s) of one step."""
    from perceiver.builders import cross_attention_layer
    from perceiver.config import CrossAttentionConfig

    torch.manual_seed(0)
    layer = cross_attention_layer(
        CrossAttentionConfig(num_cross_attention_heads=args.heads),
        args.latent_channels,
        args.input_channels,
        kv_chunk_size=args.kv_chunk or None,
    )
    latents = torch.randn(1, args.latents, args.latent_channels)  # (1, N, C)
    inputs = torch.randn(1, args.measure, args.input_channels)  # (1, M, Ckv)

    def step(inputs: torch.Tensor) -> None:
        if args.mode == "train":
            layer(latents, inputs).square().mean().backward()
        else:
            with torch.inference_mode():
                layer(latents, inputs)

    # Warm-up: one step on the first WARM_UP inputs (chunked in chunks of WARM_UP // 4 if
    # the layer chunks), so one-time costs are not counted as the step's: lazy imports
    # (the first ``torch.utils.checkpoint`` call imports ``torch._dynamo``, ~1.7 s and
    # ~70 MiB), first-touched code pages.
    kv_chunk = layer.kv_chunk_size
    layer.kv_chunk_size = None if kv_chunk is None else WARM_UP // 4
    step(inputs[:, :WARM_UP])
    layer.kv_chunk_size = kv_chunk
    layer.zero_grad(set_to_none=True)
    _, growth, elapsed = peak_growth(lambda: step(inputs))
    return {"growth": growth, "seconds": elapsed}


def in_subprocess(args: argparse.Namespace, inputs: int, mode: str, chunk: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.chunked_attention_memory", "--measure", str(inputs)]
    cmd += ["--mode", mode, "--kv-chunk", str(chunk)]
    for name in ("latents", "latent_channels", "input_channels", "heads"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", type=int, nargs="+", default=[65536, 262144, 524288])
    # 4096: a third of 16384's memory (one chunk's keys/values and their gradients), no
    # measurable extra time on this layer (benchmarked 4096, 8192 and 16384 at 2 threads)
    parser.add_argument("--kv-chunk", type=int, default=4096, help="0: unchunked")
    parser.add_argument("--latents", type=int, default=256)
    parser.add_argument("--latent-channels", type=int, default=256)
    parser.add_argument("--input-channels", type=int, default=64)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--measure", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--mode", choices=["train", "infer"], default="train", help=argparse.SUPPRESS
    )
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    if args.measure:
        torch.set_num_threads(2)
        print(json.dumps(measure(args)))
        return

    lines = [
        "## Input cross-attention memory, chunked over the inputs "
        "(`benchmarks/chunked_attention_memory.py`)",
        "",
        f"One `CrossAttentionLayer`: {args.latents} latents x {args.latent_channels} channels "
        f"attend to M inputs x {args.input_channels} channels, {args.heads} heads, batch 1, "
        f"float32; chunked = `kv_chunk_size={args.kv_chunk}`. Peak RSS growth of one step in a "
        "fresh process after a warm-up step on 4096 inputs (the inputs are allocated before "
        "it); train = forward, loss, backward.",
        "",
        "| M inputs | train MiB, unchunked | train MiB, chunked | ratio | "
        "inference MiB, unchunked | inference MiB, chunked | ratio | train time chunked / "
        "unchunked |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in args.inputs:
        cells = [f"{m:,}"]
        times = []
        for mode in ("train", "infer"):
            plain = in_subprocess(args, m, mode, 0)
            chunked = in_subprocess(args, m, mode, args.kv_chunk)
            cells += [
                f"{plain['growth'] / MIB:.0f}",
                f"{chunked['growth'] / MIB:.0f}",
                f"{chunked['growth'] / plain['growth']:.2f}",
            ]
            if mode == "train":
                times.append(chunked["seconds"] / plain["seconds"])
        cells.append(f"{times[0]:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += [
        "",
        "Unchunked, the layer holds the normalised inputs and the (1, 8, M, 32) keys and values "
        "(and, in training, what backward needs of them), so its growth rises with M. Chunked, "
        "one chunk's keys/values exist at a time and each chunk goes through PyTorch's CPU "
        "flash-attention kernel, the chunks merged by their log-sum-exps; training "
        "checkpoints every chunk and projects its keys/values again in backward, which is "
        "where the extra time goes (the attention itself runs once forward, once backward).",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        print(f"recorded in {record('chunked_attention_memory', body)}")


if __name__ == "__main__":
    main()
