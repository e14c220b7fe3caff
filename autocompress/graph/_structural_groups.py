"""Channel groups of transformer blocks, found from module structure: attention heads and FFN neurons.

torch.fx cannot trace Hugging Face models (data-dependent branches on masks and caches), and
inside attention a head's channels are split by a ``view`` that blocks ordinary channel groups.
These groups are recognised by the modules a block is made of:

- **attention heads**: a module with q / k / v Linear layers (named ``query``/``key``/``value``,
  ``q_proj``/``k_proj``/``v_proj`` or ``q``/``k``/``v``), an output projection beside them
  (``out_proj``, ``o_proj``, ``o``, ``out``) or, Hugging Face BERT's layout, in the parent's
  ``output.dense``, and an int head count (``num_attention_heads``, ``num_heads``, ``n_heads``
  or ``heads``): Hugging Face BERT-style self-attention, autocompress's
  ``SplitMultiheadAttention`` (what ``nn.MultiheadAttention`` becomes) and most hand-written
  attention modules. The forward must size its head reshape from that count or with ``-1``
  (pruning updates the count); ``compress`` runs the pruned model once and names the module
  if it does not. One group channel is one head: the head's
  ``head_dim`` rows of q, k and v and its ``head_dim`` input columns of the output projection
  go together (``ChannelUse.block``), and the module's head count follows (``ChannelGroup.heads``);
- **FFN neurons** (Hugging Face BERT-style layer): ``intermediate.dense`` -> activation ->
  ``output.dense``; one group channel is one intermediate neuron (a row of the first, a column
  of the second). Only used where torch.fx cannot trace the model (fx finds these itself).

Example::

    for g in structural_groups(bert):   # encoder.layer.0.attention.self.query, ... : 12 heads
        print(g.producers, g.channels, g.heads)
"""

from __future__ import annotations

from torch import nn

from autocompress.graph._channel_spaces import ChannelUse

_PROJECTIONS = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"), ("q", "k", "v"))
_OUTPUTS = ("out_proj", "o_proj", "o", "out")  # the output projection, beside q/k/v
_HEAD_COUNTS = ("num_attention_heads", "num_heads", "n_heads", "heads")

Found = tuple[tuple[str, ...], int, tuple[ChannelUse, ...], str]


def structural_groups(model: nn.Module, *, ffn: bool = True) -> list[Found]:
    """(producers, channels, uses, heads module or "") of every group found from structure."""
    mods = dict(model.named_modules())
    out: list[Found] = []
    for name, m in mods.items():
        prefix = f"{name}." if name else ""
        found = _attention(mods, name, m)
        if found is not None:
            out.append(found)
        elif ffn and _is_hf_ffn(m):
            first, second = f"{prefix}intermediate.dense", f"{prefix}output.dense"
            n = mods[first].out_features  # type: ignore[union-attr]
            out.append(((first,), int(n), (ChannelUse(first, "out", 0), ChannelUse(second, "in", 0)), ""))
    return out


def _attention(mods: dict[str, nn.Module], name: str, m: nn.Module) -> Found | None:
    """The head group of ``m`` if it is a multi-head attention module: q/k/v Linear layers
    named as in :data:`_PROJECTIONS`, an output projection beside them (or, Hugging Face's
    layout, the parent's ``output.dense``) and an int head count attribute."""
    prefix = f"{name}." if name else ""
    projs = next((p for p in _PROJECTIONS if all(isinstance(getattr(m, a, None), nn.Linear) for a in p)), None)
    heads = next((getattr(m, a) for a in _HEAD_COUNTS if type(getattr(m, a, None)) is int), None)
    if projs is None or heads is None or heads < 1:
        return None
    out = next((f"{prefix}{o}" for o in _OUTPUTS if isinstance(getattr(m, o, None), nn.Linear)), None)
    if out is None:
        parent = name.rpartition(".")[0]
        dense = f"{parent}.output.dense" if parent else "output.dense"
        out = dense if isinstance(mods.get(dense), nn.Linear) else None
    if out is None:
        return None
    return _heads(mods, [f"{prefix}{p}" for p in projs], out, heads, name)


def _heads(mods: dict[str, nn.Module], projs: list[str], out_proj: str, heads: int, module: str) -> Found | None:
    lin = [mods[p] for p in projs]
    width = int(lin[0].out_features)  # type: ignore[arg-type]
    size = width // heads
    ok = width == heads * size and all(int(q.out_features) == width for q in lin) and (  # type: ignore[arg-type]
        int(mods[out_proj].in_features) == width)  # type: ignore[arg-type]
    if not ok:  # an unusual layout (kdim != embed_dim, grouped keys, ...): not a head group
        return None
    uses = (*(ChannelUse(p, "out", 0, size) for p in projs), ChannelUse(out_proj, "in", 0, size))
    return tuple(projs), heads, uses, module


def _is_hf_ffn(m: nn.Module) -> bool:
    first = getattr(getattr(m, "intermediate", None), "dense", None)
    second = getattr(getattr(m, "output", None), "dense", None)
    return (isinstance(first, nn.Linear) and isinstance(second, nn.Linear)
            and first.out_features == second.in_features)


def set_heads(module: nn.Module, kept: list[int]) -> None:
    """After pruning, the attention ``module`` runs ``len(kept)`` heads (``kept``: indices
    among its current heads): its head count attribute (and Hugging Face's ``all_head_size``)
    follow; ``SplitMultiheadAttention`` also remembers which heads are left."""
    prune = getattr(module, "prune_heads_to", None)
    if callable(prune):
        prune(kept)
        return
    attr = next(a for a in _HEAD_COUNTS if type(getattr(module, a, None)) is int)
    old = int(getattr(module, attr))
    setattr(module, attr, len(kept))
    if type(getattr(module, "all_head_size", None)) is int:
        module.all_head_size = module.all_head_size // old * len(kept)  # type: ignore[assignment, operator]
