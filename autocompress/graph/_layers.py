"""Discover the compressible layers of a model: paths, shapes, parameters and MACs.

Compressible: ``nn.Linear`` (attention projections included), ``nn.Conv1d`` and
``nn.Conv2d`` (grouped and depthwise included), and ``nn.Embedding`` (kind ``"embedding"``:
its weight only, rows looked up, never multiplied; a policy's ``default`` does not reach it). MACs are counted by
``torch.utils.flop_counter`` at the given example input, per sample (flops / 2 / batch);
a layer called several times (shared weights) counts every call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autocompress.errors import GraphError

LayerKind = Literal["linear", "conv1d", "conv2d", "embedding"]
COMPRESSIBLE: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding)


@dataclass(frozen=True)
class LayerInfo:
    """One compressible layer as seen at an example input (shapes include the batch)."""

    name: str
    kind: LayerKind
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    groups: int
    has_bias: bool
    weight_shape: tuple[int, ...]
    params: int
    macs: int
    calls: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels

    @property
    def max_rank(self) -> int:
        """Largest meaningful rank of the weight viewed as (out, in * prod(kernel))."""
        k = 1
        for s in self.kernel_size:
            k *= s
        return min(self.out_channels, (self.in_channels // self.groups) * k)


def kind_of(module: nn.Module) -> LayerKind | None:
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    if isinstance(module, nn.Conv1d):
        return "conv1d"
    if isinstance(module, nn.Embedding):
        return "embedding"
    return None


def lookup_names(model: nn.Module) -> list[str]:
    """Paths of the ``nn.Embedding`` layers among the compressible ones (a policy's ``default``
    does not apply to them: only entries that name them, exactly or by ``re:``)."""
    return [n for n, m in iter_compressible(model) if isinstance(m, nn.Embedding)]


def iter_compressible(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(path, module) of every compressible layer, in registration order, once each."""
    for name, mod in model.named_modules(remove_duplicate=True):
        if name and kind_of(mod) is not None:
            yield name, mod


def with_split_attention(model: nn.Module) -> nn.Module:
    """``model``, or, when it holds ``nn.MultiheadAttention``, a copy with the explicit
    ``q_proj``/``k_proj``/``v_proj``/``out_proj`` layers that ``compress`` works on, so the
    names and shapes seen here are the ones a policy can address."""
    if not any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):
        return model
    import copy

    from autocompress.models import split_attention

    copied = copy.deepcopy(model)
    split_attention(copied)
    return copied


def layers(model: nn.Module, example_input: torch.Tensor | tuple[torch.Tensor, ...]) -> list[LayerInfo]:
    """The compressible layers of ``model`` with shapes and MACs at ``example_input``.

    ``nn.MultiheadAttention`` is seen as its four projections (``<name>.q_proj``, ...), as
    ``compress`` splits it.

    Example::

        infos = autocompress.layers(model, torch.randn(1, 1, 28, 28))
        print([(i.name, i.params, i.macs) for i in infos])
    """
    model = with_split_attention(model)
    found = list(iter_compressible(model))
    if not found:
        raise GraphError(
            f"{type(model).__name__} has no compressible layer (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding)"
        )
    shapes: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {n: [] for n, _ in found}

    def hook(name: str):  # a forward hook factory
        def _h(_m: nn.Module, args: tuple, out: torch.Tensor) -> None:
            shapes[name].append((tuple(args[0].shape), tuple(out.shape)))

        return _h

    handles = [m.register_forward_hook(hook(n)) for n, m in found]
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*args)
    except Exception as e:  # the user's model failed on the user's input: say so
        raise GraphError(f"running {type(model).__name__} on the example input failed: {e}") from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    batch = int(args[0].shape[0]) if args[0].dim() > 0 else 1
    flops = _flops_by_path(counter, type(model).__name__)
    out = []
    for name, mod in found:
        calls = shapes[name]
        w: torch.Tensor = mod.weight  # type: ignore[assignment]
        kernel = tuple(getattr(mod, "kernel_size", ()))
        in_c, out_c = _in_out(mod)
        bias: torch.Tensor | None = getattr(mod, "bias", None)
        out.append(
            LayerInfo(
                name=name,
                kind=kind_of(mod),  # type: ignore[arg-type]
                in_channels=int(in_c),
                out_channels=int(out_c),
                kernel_size=kernel,
                groups=int(getattr(mod, "groups", 1)),
                has_bias=bias is not None,
                weight_shape=tuple(w.shape),
                params=w.numel() + (bias.numel() if bias is not None else 0),
                macs=int(flops.get(name, 0) // 2 // max(batch, 1)),
                calls=len(calls),
                input_shape=calls[0][0] if calls else (),
                output_shape=calls[0][1] if calls else (),
            )
        )
    return out


def _in_out(mod: nn.Module) -> tuple[int, int]:
    """(in, out) features: Linear's features, a conv's channels, an embedding's (rows, dim)."""
    m: Any = mod
    if isinstance(mod, nn.Linear):
        return m.in_features, m.out_features
    if isinstance(mod, nn.Embedding):
        return m.num_embeddings, m.embedding_dim
    return m.in_channels, m.out_channels


def _flops_by_path(counter: FlopCounterMode, root: str) -> dict[str, int]:
    """FlopCounterMode keys modules as '<RootClass>.<path>'; map them back to paths."""
    res: dict[str, int] = {}
    for key, per_op in counter.get_flop_counts().items():
        if key.startswith(root + "."):
            res[key[len(root) + 1 :]] = int(sum(per_op.values()))
    return res
