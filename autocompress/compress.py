"""policy -> compressed model, in train form (differentiable) or deploy form (what ships).

The order of composition, the same in both forms, per layer:

1. channel pruning: output channels removed with their whole coupled group (structural and
   physical in both forms, so the fine-tune trains exactly the shapes that ship);
2. low rank: the layer becomes ``Factorized(first, second)`` by truncated SVD;
3. weight masks: unstructured magnitude or N:M, on every weight leaf of the layer;
4. quantisation: weight fake-quant after the mask; activation fake-quant on each leaf input;
   at 8-bit activations a leaf read only by ReLUs quantises its output from 0, and a leaf fed
   by another through ReLU / max pooling / reshapes shares that leaf's output quantiser;
5. deploy form only: each leaf becomes its deploy module (packed storage, real kernels).

``compress`` never modifies the model it is given: it works on a deep copy, so a policy that
fails validation (or any error) leaves the caller's model untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from autocompress.errors import PolicyError
from autocompress.graph import ActLinks, activation_links, iter_compressible
from autocompress.policy import LayerConfig, Policy
from autocompress.techniques.quantize import link_quantizers

Form = Literal["train", "deploy"]
ExampleInput = torch.Tensor | tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Resolved:
    """The per-layer configs of a policy for one model (after normalisation)."""

    configs: dict[str, LayerConfig]

    def channel_ratios(self) -> dict[str, float]:
        return {n: c.sparsity for n, c in self.configs.items() if c.pattern == "channel" and c.sparsity > 0}


def normalise(model: nn.Module) -> nn.Module:
    """Expose every compressible weight as a Linear/Conv leaf (in place).

    ``nn.MultiheadAttention`` packs q/k/v into one parameter; it is replaced by an exactly
    equivalent module with explicit ``q_proj``/``k_proj``/``v_proj``/``out_proj`` layers.
    """
    from autocompress.models import split_attention

    split_attention(model)
    return model


def resolve(model: nn.Module, policy: Policy) -> Resolved:
    """The config of every compressible layer of a normalised model, or of its train form.

    A train form's low-rank layer (``Factorized``) is the policy's layer of that name, not
    its two factors, so a policy resolves to the same configs before and after ``compress``:
    this is how :func:`to_deploy` gets them, nothing is read off the modules.
    """
    from autocompress.graph import lookup_names
    from autocompress.techniques.embedding import embedding_configs

    lookups = lookup_names(model)
    configs = policy.resolve(layer_names(model), lookups=lookups)
    configs.update(embedding_configs(model, {n: configs[n] for n in lookups if n in configs}, policy.default))
    return Resolved(configs)


def layer_names(model: nn.Module) -> list[str]:
    """The policy's layer names of ``model``: its compressible leaves, a low-rank layer once."""
    from autocompress.techniques.lowrank import Factorized

    factored = [n for n, m in model.named_modules() if n and isinstance(m, Factorized)]
    return [n for n, _ in iter_compressible(model)
            if not any(n.startswith(f + ".") for f in factored)] + factored


def compress(
    model: nn.Module,
    policy: Policy,
    form: Form = "train",
    example_input: ExampleInput | None = None,
) -> nn.Module:
    """Return a compressed copy of ``model``; ``model`` itself is never modified.

    ``example_input`` (a batch) is needed for channel pruning (graph tracing) and to
    calibrate activation ranges (``act_bits`` < 32, except dynamic ones: ``act_dynamic``).

    Example::

        policy = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}})
        small = compress(model, policy, form="deploy", example_input=x)
    """
    if form not in ("train", "deploy"):
        raise PolicyError(f"form must be 'train' or 'deploy', got {form!r}")
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be an autocompress.Policy, got {type(policy).__name__}")
    out = normalise(copy.deepcopy(model))
    res = resolve(out, policy)
    calibrated = any(c.act_bits < 32 and not c.act_dynamic for c in res.configs.values())
    needs_input = bool(res.channel_ratios()) or calibrated
    if needs_input and example_input is None:
        raise PolicyError(
            "this policy prunes channels or quantises activations: pass example_input= "
            "(a batch of real inputs, used for graph tracing and range calibration)"
        )
    out = apply_structure(out, res, example_input)
    links = _activation_links(out, res)  # traced before any hook or parametrization is attached
    _attach_train_form(out, res)
    link_quantizers(out, links)
    if calibrated:
        _calibrate(out, example_input)
    if form == "deploy":
        out = _to_deploy(out, res)
    return out


def apply_structure(model: nn.Module, res: Resolved, example_input: ExampleInput | None) -> nn.Module:
    """Steps 1-2 (channels, low rank), in place; works on ``meta`` tensors too."""
    from autocompress.techniques.channels import prune_channels
    from autocompress.techniques.lowrank import factorize

    ratios = res.channel_ratios()
    if ratios:
        if example_input is None:
            raise PolicyError("channel pruning needs example_input= (a batch, for graph tracing)")
        prune_channels(model, example_input, ratios)
    for name, cfg in res.configs.items():
        if cfg.rank is not None:
            leaf = model.get_submodule(name)
            _set_submodule(model, name, factorize(leaf, _rank_for(name, leaf, cfg), name=name))
    return model


def _rank_for(name: str, leaf: nn.Module, cfg: LayerConfig) -> int:
    from autocompress.techniques.lowrank import resolve_rank

    if cfg.rank is None:
        raise PolicyError(f"layers.{name}: no rank to resolve")
    weight: torch.Tensor = leaf.weight  # type: ignore[assignment]
    shape = tuple(weight.shape)
    in_flat = 1
    for s in shape[1:]:
        in_flat *= int(s)
    try:
        return resolve_rank(cfg.rank, int(shape[0]), in_flat)
    except PolicyError as e:
        raise PolicyError(f"layers.{name}: {e}") from None


def weight_leaves(model: nn.Module, res: Resolved) -> list[tuple[str, str, nn.Module, LayerConfig]]:
    """(layer name, leaf path, leaf, config) of every weight leaf of a compressed layer."""
    from autocompress.techniques.lowrank import Factorized

    out = []
    for name, cfg in res.configs.items():
        mod = model.get_submodule(name)
        if isinstance(mod, Factorized):
            out.append((name, f"{name}.first", mod.first, cfg))
            out.append((name, f"{name}.second", mod.second, cfg))
        else:
            out.append((name, name, mod, cfg))
    return out


def _attach_train_form(model: nn.Module, res: Resolved) -> None:
    from autocompress.techniques.quantize import attach_quant
    from autocompress.techniques.sparsify import attach_mask

    for name, _leaf_path, leaf, cfg in weight_leaves(model, res):
        try:
            attach_mask(leaf, cfg, name=name)  # does nothing when no mask is asked for
            attach_quant(leaf, cfg, name=name)  # does nothing at fp32 weights and activations
        except PolicyError as e:
            msg = str(e)
            raise PolicyError(msg if name in msg else f"layers.{name}: {msg}") from None


def _activation_links(model: nn.Module, res: Resolved) -> ActLinks:
    """For step 4 at 8-bit activations: where only value-keeping ops (ReLU, max pooling,
    flatten, ...) lie between two layers (``graph.activation_links``)."""
    if not any(c.static_act8 for c in res.configs.values()):
        return ActLinks()
    return activation_links(model)


def _calibrate(model: nn.Module, example_input: ExampleInput | None) -> None:
    from autocompress.techniques.quantize import calibrate

    calibrate(model, example_input)


def to_deploy(model: nn.Module, policy: Policy) -> nn.Module:
    """Train form -> deploy form, in place: every compressed leaf becomes its deploy module.

    ``model`` is what ``compress(..., form="train")`` returned (fine-tuned or not) and
    ``policy`` the policy it was built from; the per-layer configs are resolved from it again.

    Example::

        train = compress(model, policy, form="train", example_input=x)
        ...  # fine-tune train
        deploy = to_deploy(train, policy)
    """
    if not isinstance(policy, Policy):
        raise PolicyError(f"to_deploy(model, policy): policy must be an autocompress.Policy, "
                          f"got {type(policy).__name__}")
    return _to_deploy(model, resolve(model, policy))


def _to_deploy(model: nn.Module, res: Resolved) -> nn.Module:
    from autocompress.techniques.deploy import DeployLeaf, needs_deploy
    from autocompress.techniques.deploy import to_deploy as leaf_to_deploy

    for _name, leaf_path, leaf, cfg in weight_leaves(model, res):
        if needs_deploy(cfg) and not isinstance(leaf, DeployLeaf):  # a tied leaf is done once
            _set_submodule(model, leaf_path, leaf_to_deploy(leaf, cfg))
    return model.eval()


def _set_submodule(model: nn.Module, path: str, new: nn.Module) -> None:
    """Replace the module at ``path`` and at every other path that aliases it (tied layers)."""
    old = model.get_submodule(path)
    paths = [n for n, m in model.named_modules(remove_duplicate=False) if m is old and n]
    for p in paths or [path]:
        parent_path, _, attr = p.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, attr, new)
