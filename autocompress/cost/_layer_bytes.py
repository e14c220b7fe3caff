"""Deploy-form bytes per policy layer, for browsing a trial (the dashboard's layer heatmap).

``size_breakdown`` keys its figures by leaf path and lumps layers left at fp32 into
``"<other>"``; a person reading a policy wants every compressible layer named, with what it
costs after compression, a factorised layer counted once. This is the ``layers`` view of the
same walk as the exact size model (:func:`autocompress.cost._size.size_report`).
"""

from __future__ import annotations

from torch import nn

from autocompress.compress import ExampleInput
from autocompress.cost._size import size_report
from autocompress.policy import Policy


def layer_bytes(model: nn.Module, policy: Policy, example_input: ExampleInput) -> dict[str, int]:
    """Bytes of each compressible layer's tensors in ``compress(model, policy, "deploy")``.

    Example::

        layer_bytes(model, Policy.from_dict({"default": {"weight_bits": 4}}), x)
        # {"conv1": 182, "conv2": 1984, ..., "fc2": 320}
    """
    return size_report(model, policy, example_input).layers
