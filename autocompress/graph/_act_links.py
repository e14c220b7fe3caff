"""Where one layer's quantised output is the next layer's input: the links that let 8-bit
activations stay 8-bit between layers, as ONNX Runtime's and OpenVINO's int8 graphs want.

Two facts, read off a torch.fx trace of the model (after its structure is final):

- ``relu_only``: layers whose output is read by ReLUs only. Their output quantiser may cover
  ``[0, max]`` (zero point 0) instead of ``[min, max]``: clamping at 0 is what the ReLU does
  anyway, so nothing downstream changes, and the integer kernel's output needs no ReLU of its
  own (ORT fuses Conv+ReLU+Q);
- ``input_from``: layer -> the layer whose output reaches its input through value-preserving
  ops only (ReLU, max pooling, flatten / view / reshape / permute / squeeze, dropout,
  identity). Those ops keep values on the producer's 8-bit grid, so the consumer's input
  quantiser can be the producer's output quantiser: the round trip between them is exact and
  the runtime drops it (no requantisation).

A layer called at several places (shared weights) is linked only if every call agrees. A
model that torch.fx cannot trace gets no links (each layer keeps its own ranges).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from autocompress.graph._groups import _Tracer
from autocompress.graph._layers import kind_of

_RELU_MODULES = (nn.ReLU,)
_RELU_FUNCTIONS: set[object] = {F.relu, torch.relu, torch.relu_}
_RELU_METHODS = {"relu", "relu_"}
_KEEP_MODULES = (nn.ReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                 nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
_KEEP_FUNCTIONS: set[object] = {
    F.relu, torch.relu, torch.relu_, torch.flatten, F.max_pool1d, F.max_pool2d, F.max_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.dropout, torch.squeeze, torch.unsqueeze,
    torch.permute, torch.reshape, torch.transpose, operator.getitem}
_KEEP_METHODS = {"relu", "relu_", "flatten", "view", "reshape", "contiguous", "permute", "transpose",
                 "squeeze", "unsqueeze", "clone", "detach"}


@dataclass(frozen=True)
class ActLinks:
    """What :func:`activation_links` found (layer paths as in ``named_modules``)."""

    relu_only: frozenset[str] = frozenset()
    input_from: dict[str, str] = field(default_factory=dict)


def activation_links(model: nn.Module) -> ActLinks:
    """The ReLU-only outputs and producer -> consumer links of ``model``'s compressible layers."""
    try:
        tracer = _Tracer()
        graph = tracer.trace(model)
    except Exception:  # untraceable forward: no links, every layer keeps its own ranges
        return ActLinks()
    modules = dict(model.named_modules())
    calls: dict[str, list[fx.Node]] = {}
    for node in graph.nodes:
        if node.op == "call_module" and kind_of(modules.get(str(node.target), nn.Module())) is not None:
            calls.setdefault(str(node.target), []).append(node)
    relu_only = frozenset(
        path for path, nodes in calls.items()
        if all(n.users and all(_is_relu(u, modules) for u in n.users) for n in nodes)
    )
    input_from: dict[str, str] = {}
    for path, nodes in calls.items():
        sources = {_producer(n.args[0], modules, calls) if n.args else None for n in nodes}
        if len(sources) == 1:
            src = sources.pop()
            if src is not None and src != path:
                input_from[path] = src
    return ActLinks(relu_only, input_from)


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    return _is_op(node, modules, _RELU_MODULES, _RELU_FUNCTIONS, _RELU_METHODS)


def _keeps_values(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    return _is_op(node, modules, _KEEP_MODULES, _KEEP_FUNCTIONS, _KEEP_METHODS)


def _is_op(node: fx.Node, modules: dict[str, nn.Module], classes: tuple[type[nn.Module], ...],
           functions: set[object], methods: set[str]) -> bool:
    """Whether ``node`` calls one of these module classes, functions or tensor methods."""
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), classes)
    if node.op == "call_function":
        return node.target in functions
    return node.op == "call_method" and node.target in methods


def _producer(arg: object, modules: dict[str, nn.Module], calls: dict[str, list[fx.Node]]) -> str | None:
    """The compressible layer whose output reaches ``arg`` through value-keeping ops only."""
    node = arg
    while isinstance(node, fx.Node):
        if node.op == "call_module" and str(node.target) in calls:
            return str(node.target)
        if not _keeps_values(node, modules) or not node.args:
            return None
        node = node.args[0]  # the tensor operand; the others are sizes, dims, slices
    return None
