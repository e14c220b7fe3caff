"""Measure this machine: deploy-form leaves, per-model overheads, and the ``local`` profile.

Every leaf configuration that occurs is built as a one-layer model, compressed to its real
deploy form with :func:`autocompress.compress` and timed (warm-up, repeated blocks, median,
fixed thread count restored after). Results go into the fingerprinted cache table.

Example::

    table = profile_model(net, x)                  # leaves of the dense model + overhead fit
    profile_plan(plan(net, policy, x), table)      # leaves of one policy
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from autocompress.cost._plan import LeafPlan, plan
from autocompress.cost.latency import LeafTable, fingerprint, leaf_key, output_elements
from autocompress.cost.profiling._timing import clock_for, time_ms, torch_threads
from autocompress.errors import PolicyError
from autocompress.policy import LayerConfig, Policy


class _One(nn.Module):
    def __init__(self, leaf: nn.Module) -> None:
        super().__init__()
        self.leaf = leaf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.leaf(x)


def _padding(p: LeafPlan) -> tuple[int, ...]:
    """Padding that reproduces the plan's output size (dilation 1 assumed)."""
    spatial_in = p.input_shape[2:]
    spatial_out = p.output_shape[2:]
    return tuple(
        max(0, math.ceil(((o - 1) * s + k - i) / 2))
        for i, o, k, s in zip(spatial_in, spatial_out, p.kernel_size, p.stride, strict=True)
    )


def dense_leaf(p: LeafPlan) -> nn.Module:
    """A float nn.Linear / nn.Conv with the leaf's shapes (kept channels, rank included)."""
    if p.kind == "linear":
        return nn.Linear(p.in_channels, p.out_channels, bias=p.has_bias)
    conv: Any = nn.Conv2d if p.kind == "conv2d" else nn.Conv1d
    return conv(p.in_channels, p.out_channels, p.kernel_size, stride=p.stride,
                padding=_padding(p), groups=p.groups, bias=p.has_bias)


def leaf_config(p: LeafPlan) -> LayerConfig:
    """The leaf's own config: channel pruning and rank are already in its shapes."""
    if p.pattern == "channel" or p.sparsity <= 0:
        return LayerConfig(weight_bits=p.weight_bits, act_bits=p.act_bits, codebook=p.codebook,
                           act_dynamic=p.act_dynamic)
    return LayerConfig(weight_bits=p.weight_bits, act_bits=p.act_bits, act_dynamic=p.act_dynamic,
                       sparsity=p.sparsity, pattern=p.pattern, codebook=p.codebook)


def deploy_leaf(p: LeafPlan, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The leaf's real deploy module and an input of its shape."""
    from autocompress.compress import compress

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(p.input_shape, generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        one = _One(dense_leaf(p))
    policy = Policy(layers=(("leaf", leaf_config(p)),))
    deployed = compress(one, policy, form="deploy", example_input=x)
    return deployed.get_submodule("leaf"), x


def measure_leaf(p: LeafPlan, *, threads: int = 1) -> float:
    """Median milliseconds of one call of the leaf's deploy module."""
    mod, x = deploy_leaf(p)
    with torch_threads(threads):
        return time_ms(lambda: mod(x), clock=clock_for(threads))


def profile_plan(leaves: Sequence[LeafPlan], table: LeafTable | None = None, *,
                 threads: int = 1, save: bool = True, force: bool = False) -> LeafTable:
    """Time every leaf configuration of ``leaves`` not yet in ``table`` (cached on disk);
    with ``force``, time them all again (the new figures replace the old)."""
    table = table if table is not None else LeafTable.load(fingerprint(threads))
    threads = table.fingerprint.threads
    todo = {leaf_key(p): p for p in leaves if force or leaf_key(p) not in table.leaves}
    for p in todo.values():
        table.add_leaf(p, measure_leaf(p, threads=threads), "deploy")
    if todo and save:
        table.save()
    return table


def measure_model(model: nn.Module, example_input: Any, *, threads: int = 1,
                  repeats: int = 21, rounds: int = 3) -> float:
    """Median end-to-end milliseconds of one forward at ``threads`` threads
    (thread CPU time at one thread, see :mod:`._timing`)."""
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    model.eval()
    with torch_threads(threads):
        return time_ms(lambda: model(*args), repeats=repeats, clock=clock_for(threads),
                       rounds=rounds)


CALIBRATION_SEED = 7_919  # random calibration policies; latency-check draws its own from other seeds
# Random compressed policies added to the overhead fit by default. Fitted on the dense and
# channel-cut models only, a compressed model's extra module calls (factorised pairs, int8
# quantise/dequantise) went unmodelled: digits-cnn at batch 1 (0.07-0.17 ms) was
# under-predicted by 5-14% (65% within 10%); with 6: MAPE 3.2%, 90% within (docs/benchmarks-history.md).
CALIBRATION_POLICIES = 6


def profile_model(model: nn.Module, example_input: Any, table: LeafTable | None = None, *,
                  threads: int = 1, ratios: Sequence[float] = (0.0, 0.25, 0.5),
                  calibration: int = CALIBRATION_POLICIES, save: bool = True) -> LeafTable:
    """Fit what per-leaf sums miss for this model: end to end = k * sum(leaves) + q * (int8
    leaf calls) + rest, rest = c0 + c1 * (elements the layers output).

    The rest (norms, activations, adds, pooling, Python dispatch) is timed directly, not as
    end-to-end minus leaves (a small difference of large noisy numbers): every weight leaf
    of the deploy form is replaced by a stub that replays its recorded output, and the
    stubbed model is timed. ``k`` is how much slower leaves run inside the model than
    alone (in the model, the other layers evict their weights from the caches). This is
    done for the dense model and copies with every prunable channel group cut by each of
    ``ratios`` (fewer channels -> cheaper norms); c1 >= 0, k >= 1 and q >= 0 are fitted by
    least squares (q needs calibration policies with int8 leaves). Without prunable groups
    the rest is one constant. ``calibration`` random policies (bits, activation bits,
    channels, rank; drawn with :data:`CALIBRATION_SEED`) add points of other leaf kinds
    (int8, factorised) to both fits.
    """
    from autocompress.compress import compress
    from autocompress.cost.latency import dense_key, model_signature
    from autocompress.cost.profiling._policies import channel_policy, prunable_groups

    table = table if table is not None else LeafTable.load(fingerprint(threads))
    groups = prunable_groups(model, example_input)
    points: list[tuple[float, float]] = []
    in_model: list[tuple[float, float, float]] = []  # (leaves alone, int8 calls, end to end - rest)
    sig = dense = ""
    policies = [channel_policy(groups, r) if r > 0 else Policy() for r in (ratios if groups else (0.0,))]
    if calibration > 0:
        import random

        from autocompress.cost.profiling._policies import random_policy

        rng = random.Random(CALIBRATION_SEED)
        policies += [random_policy(model, groups, rng) for _ in range(calibration)]
    for policy in policies:
        try:
            leaves = plan(model, policy, example_input)
        except PolicyError:  # e.g. a rank this layer cannot take: skip that calibration point
            continue
        if not sig:  # the first policy is the uncompressed model
            sig, dense = model_signature(leaves), dense_key(leaves)
        profile_plan(leaves, table, threads=threads, save=False, force=True)
        alone = sum(table.leaves[leaf_key(p)]["ms"] * p.calls for p in leaves)
        deployed = compress(model, policy, form="deploy", example_input=example_input)
        total = measure_model(deployed, example_input, threads=threads)
        rest = measure_rest(deployed, [p.leaf for p in leaves], example_input, threads=threads)
        points.append((float(output_elements(leaves)), rest))
        int8_calls = sum(p.calls for p in leaves if p.kernel == "int8")
        in_model.append((alone, float(int8_calls), total - rest))
    c0, c1 = _fit_line(points)
    k, q = _fit_in_model(in_model)
    table.set_overhead(sig, c0, c1, k, q, calibration=max(calibration, 0), dense=dense)
    if save:
        table.save()
    return table


class _Replay(nn.Module):
    """Stands in for a leaf: returns the outputs it recorded, in call order."""

    def __init__(self, outs: list[torch.Tensor]) -> None:
        super().__init__()
        self.outs = outs
        self.i = 0

    def forward(self, *args: Any) -> torch.Tensor:
        out = self.outs[self.i % len(self.outs)]
        self.i += 1
        return out


def measure_rest(deployed: nn.Module, leaf_paths: Sequence[str], example_input: Any, *,
                 threads: int = 1) -> float:
    """Milliseconds of everything in ``deployed`` but its weight leaves (modified in place)."""
    outs: dict[str, list[torch.Tensor]] = {p: [] for p in leaf_paths}
    hooks = [deployed.get_submodule(p).register_forward_hook(
        lambda _m, _a, o, p=p: outs[p].append(o.clone())) for p in leaf_paths]
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    with torch.inference_mode():
        deployed.eval()(*args)
    for h in hooks:
        h.remove()
    for path, recorded in outs.items():
        parent, _, attr = path.rpartition(".")
        setattr(deployed.get_submodule(parent) if parent else deployed, attr, _Replay(recorded))
    total = measure_model(deployed, example_input, threads=threads)
    stub = _Replay([torch.zeros(1)])
    with torch_threads(threads):
        stub_ms = time_ms(lambda: stub(args[0]), clock=clock_for(threads))
    calls = sum(len(v) for v in outs.values())
    return max(0.0, total - calls * stub_ms)


def _fit_in_model(rows: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Least squares of ``y = k * alone + q * int8_calls`` with k >= 1 and q >= 0.

    Measured on digits-cnn at batch 1 (21 policies): int8 leaves run ~1.5 us per call slower
    inside the model than alone while fp32 leaves match to 2%; one factor for both left
    residuals of up to 6.4%, the two terms 3.5%."""
    saa = sum(a * a for a, _, _ in rows)
    snn = sum(n * n for _, n, _ in rows)
    san = sum(a * n for a, n, _ in rows)
    say = sum(a * y for a, _, y in rows)
    sny = sum(n * y for _, n, y in rows)
    det = saa * snn - san * san
    if snn > 0 and det > 1e-18 * max(saa * snn, 1e-30):
        k, q = (say * snn - sny * san) / det, (saa * sny - san * say) / det
        if k >= 1.0 and q >= 0.0:
            return k, q
    k = max(say / max(saa, 1e-12), 1.0)  # one factor (no int8 calls, or the pair was out of bounds)
    q = max((sny - k * san) / snn, 0.0) if snn > 0 else 0.0
    return k, q


def _fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    if len(points) < 2:
        return points[0][1], 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    c1 = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx > 0 else 0.0
    c1 = max(c1, 0.0)
    return my - c1 * mx, c1
