"""Deploy-form bytes per policy layer, for browsing a trial (the dashboard's layer heatmap).

``size_breakdown`` keys its figures by leaf path and lumps layers left at fp32 into
``"<other>"``; a person reading a policy wants every compressible layer named, with what it
costs after compression, a factorised layer counted once (its two leaves summed). Computed
on the same meta copy and with the same layout functions as the exact size model, so a
layer's figure here is what that layer adds to ``size_bytes``.
"""

from __future__ import annotations

from torch import nn

from autocompress.compress import ExampleInput, weight_leaves
from autocompress.cost._plan import structural_copy
from autocompress.cost._size import needs_deploy_module
from autocompress.policy import Policy


def _tensor_bytes(module: nn.Module, seen: set[int]) -> int:
    total = 0
    for t in module.state_dict(keep_vars=True).values():
        if id(t) not in seen:  # a weight shared by two layers is stored once
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def layer_bytes(model: nn.Module, policy: Policy, example_input: ExampleInput) -> dict[str, int]:
    """Bytes of each compressible layer's tensors in ``compress(model, policy, "deploy")``.

    Example::

        layer_bytes(model, Policy.from_dict({"default": {"weight_bits": 4}}), x)
        # {"conv1": 182, "conv2": 1984, ..., "fc2": 320}
    """
    from autocompress.techniques.deploy import deploy_state_nbytes

    meta, res, _ = structural_copy(model, policy, example_input)
    out: dict[str, int] = {}
    seen: set[int] = set()
    for layer, _leaf_path, leaf, cfg in weight_leaves(meta, res):
        if needs_deploy_module(cfg):
            n = deploy_state_nbytes(leaf, cfg)
        else:
            n = _tensor_bytes(leaf, seen)
        out[layer] = out.get(layer, 0) + n
    return out
