"""Evaluator cost on digits-cnn: time per candidate (200-step fine-tune) and per fine-tune step,
train form against plain fp32.

Run: ``python bench/bench_evaluator.py [--threads 2] [--candidates 3] [--steps 200]``.
Targets: <= 3 s per candidate; a train-form step <= 2x an fp32 step. Times are the best of
several repeats (s/candidate: best of ``--candidates`` seeds), so load from other processes
inflates them as little as possible. The base model comes from the cache in
``$AUTOCOMPRESS_CACHE`` (trained on first use, ~10-20 s).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from autocompress.evaluate import Evaluator, FinetuneConfig
from autocompress.policy import Policy
from autocompress.tasks import base_model as get_base
from autocompress.tasks import get_task

POLICIES = {
    "identity": Policy(),
    "int8": Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}}),
    "int8+50%sparse": Policy.from_dict(
        {"default": {"weight_bits": 8, "act_bits": 8, "sparsity": 0.5}}
    ),
    "w4+2:4": Policy.from_dict(
        {"default": {"weight_bits": 4, "sparsity": 0.5, "pattern": "2:4"},
         "layers": {"conv1": {"weight_bits": 8, "sparsity": 0.0, "pattern": "unstructured"}}}
    ),
}


class _Stepper:
    """One fine-tune step (forward, distillation loss, backward, Adam) of one model."""

    def __init__(self, ev: Evaluator, model: nn.Module, policy: Policy) -> None:
        self.ev, self.model, self.policy = ev, model.train(), policy
        self.opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        self.gen = torch.Generator().manual_seed(0)

    def block_ms(self, steps: int) -> float:
        """Median wall time of ``steps`` steps, in ms."""
        from autocompress.techniques.distill import distill_loss

        train, times = self.ev.task.data().train, []
        for _ in range(steps):
            idx = torch.randint(0, len(train), (self.ev.config.batch_size,), generator=self.gen)
            t0 = time.perf_counter()
            out = self.model(train.x[idx])
            loss = distill_loss(out, self.ev.teacher_logits[idx], train.y[idx],
                                self.policy.distill)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3


def paired_step_ms(ev: Evaluator, policy: Policy, blocks: int = 6) -> tuple[float, float]:
    """(fp32, train form) ms per step, measured in alternating blocks so that load from
    other processes hits both alike; the fastest block of each is kept."""
    fp32, form = _Stepper(ev, ev.fresh_base(), Policy()), _Stepper(ev, ev.build(policy), policy)
    fp32.block_ms(10), form.block_ms(10)  # warm up allocator and kernels
    pairs = [(fp32.block_ms(20), form.block_ms(20)) for _ in range(blocks)]
    return min(a for a, _ in pairs), min(b for _, b in pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=3, help="repeats per policy")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("digits-cnn")
    t0 = time.perf_counter()
    base = get_base(task, progress=True)
    print(f"base model ready in {time.perf_counter() - t0:.1f} s")
    ev = Evaluator(task, base, FinetuneConfig(steps=args.steps))
    print(f"\ndigits-cnn, {args.threads} threads, batch {ev.config.batch_size}, "
          f"{args.steps}-step fine-tune, validation every {ev.config.eval_every} steps")
    print(f"{'policy':<16} {'s/candidate':>12} {'val acc':>8} {'fp32 ms/step':>13} "
          f"{'train-form ms/step':>19} {'ratio':>6}")
    for name, policy in POLICIES.items():
        ev.evaluate(policy)  # warm-up
        runs = [ev.evaluate(policy, seed=s) for s in range(args.candidates)]
        secs = min(r.seconds for r in runs)
        fp32, form = paired_step_ms(ev, policy)
        print(f"{name:<16} {secs:>12.2f} {runs[0].metric:>8.4f} {fp32:>13.2f} {form:>19.2f} "
              f"{form / fp32:>6.2f}")


if __name__ == "__main__":
    main()
