"""Per-layer and global compression settings: frozen, validated, plain-dict round trip."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from autocompress import fields as rules
from autocompress.errors import PolicyError

WEIGHT_BITS: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 16, 32)
ACT_BITS: tuple[int, ...] = (8, 16, 32)
GRANULARITIES: tuple[str, ...] = ("per_channel", "per_tensor")
NM_GROUPS: tuple[str, ...] = ("contiguous", "scattered")
Granularity = Literal["per_channel", "per_tensor"]
NMGroups = Literal["contiguous", "scattered"]
_NM = re.compile(r"^(\d+):(\d+)$")


def parse_nm(pattern: str) -> tuple[int, int] | None:
    """``"2:4"`` -> ``(2, 4)``; other patterns -> None."""
    m = _NM.match(pattern)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class LayerConfig:
    """How one layer is compressed. The defaults mean "leave it as it is".

    - ``weight_bits``: 32 = float32 (not quantised), 16 = float16 storage, 2..8 = integer.
    - ``act_bits``: bits of the layer's input (and, at 8, output) activations; 32 = float.
    - ``act_dynamic`` (``act_bits: 8`` and 2..8-bit weights on a Linear only): the input's
      uint8 scale and zero point are computed from each input tensor as it arrives (its
      min/max over the whole tensor, 0 included: what torch's ``quantize_dynamic`` and ONNX
      Runtime's ``DynamicQuantizeLinear`` do), not calibrated once; the output stays float.
      The standard CPU recipe for transformers: no calibration set, and no static range for
      activations whose range moves from input to input.
    - ``granularity`` / ``symmetric``: weight scale per output channel or per tensor.
    - ``sparsity`` in [0, 1) with ``pattern``: ``"unstructured"`` (magnitude),
      ``"channel"`` (output channels removed, with their coupled group) or ``"N:M"``
      (keep N of every M consecutive input weights; sparsity is then 1 - N/M).
    - ``rank``: None = dense; an int = absolute rank; a float in (0, 1] = ratio of
      min(in_features, out_features) after channel pruning.
    - ``codebook``: with 2..8-bit weights, one table of ``2^b`` values per layer (one of
      them exactly 0.0, the others 1-D k-means centroids of the non-zero weights: Deep
      Compression's weight sharing) instead of evenly spaced levels; ``granularity`` and
      ``symmetric`` then do not apply. Runs on the fp32 kernel (weights decoded at load).
    - ``nm_groups`` (N:M patterns only): which inputs form a group of M. ``"contiguous"``:
      M consecutive inputs (what 2:4 sparse hardware runs). ``"scattered"``: the inputs of a
      row in a fixed golden-ratio order (``techniques.sparsify.nm_order``), so every group
      samples the whole row; no extra bytes. Pick it when inputs that matter sit together,
      e.g. the digit in the middle of a flattened image, where contiguous groups spend their
      N kept weights on blank border pixels.
    """

    weight_bits: int = 32
    act_bits: int = 32
    act_dynamic: bool = False
    granularity: Granularity = "per_channel"
    symmetric: bool = True
    sparsity: float = 0.0
    pattern: str = "unstructured"
    rank: int | float | None = None
    codebook: bool = False
    nm_groups: NMGroups = "contiguous"

    def __post_init__(self) -> None:
        check_layer_config(self, where="layer config")
        nm = self.nm
        if nm is not None:  # an N:M pattern fixes the sparsity
            object.__setattr__(self, "sparsity", 1.0 - nm[0] / nm[1])

    @property
    def nm(self) -> tuple[int, int] | None:
        return parse_nm(self.pattern)

    @property
    def static_act8(self) -> bool:
        """8-bit activations with calibrated (static) ranges on input and output."""
        return self.act_bits == 8 and not self.act_dynamic

    @property
    def is_identity(self) -> bool:
        return self == LayerConfig()

    def to_dict(self, *, skip_defaults: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if skip_defaults:
            base = asdict(LayerConfig())
            d = {k: v for k, v in d.items() if base[k] != v}
        return d


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(LayerConfig))


def check_layer_config(c: LayerConfig, where: str) -> None:
    """Validate the model-independent rules; raise PolicyError naming the field."""
    rules.one_of(c.weight_bits, WEIGHT_BITS, where, PolicyError, field="weight_bits")
    rules.one_of(c.act_bits, ACT_BITS, where, PolicyError, field="act_bits")
    rules.as_bool(c.act_dynamic, where, PolicyError, field="act_dynamic")
    if c.act_dynamic and not (c.act_bits == 8 and 2 <= c.weight_bits <= 8 and not c.codebook):
        raise PolicyError(
            f"{where}: act_dynamic runs an int8 kernel: it needs act_bits 8 and 2..8-bit weights without "
            f"a codebook, got act_bits {c.act_bits}, weight_bits {c.weight_bits}"
            f"{', codebook' if c.codebook else ''}; set them so or drop act_dynamic"
        )
    rules.one_of(c.granularity, GRANULARITIES, where, PolicyError, field="granularity")
    rules.as_bool(c.symmetric, where, PolicyError, field="symmetric")
    s = rules.as_float(c.sparsity, where, 0, 1, open_hi=True, error=PolicyError, field="sparsity")
    nm = parse_nm(c.pattern) if isinstance(c.pattern, str) else None
    if c.pattern not in ("unstructured", "channel") and nm is None:
        raise PolicyError(
            f"{where}: pattern must be 'unstructured', 'channel' or 'N:M' such as '2:4', "
            f"got {c.pattern!r}"
        )
    if nm is not None:
        n, m = nm
        if not (0 < n < m <= 64):
            raise PolicyError(f"{where}: pattern {c.pattern!r} needs 0 < N < M <= 64")
        if s not in (0.0, 1.0 - n / m) and not math.isclose(s, 1.0 - n / m, abs_tol=1e-9):
            raise PolicyError(
                f"{where}: sparsity of an {c.pattern} pattern is {1 - n / m:g}; got {s!r} "
                "(leave sparsity out, or set it to 1 - N/M)"
            )
    rules.as_bool(c.codebook, where, PolicyError, field="codebook")
    if c.codebook and not 2 <= c.weight_bits <= 8:
        raise PolicyError(
            f"{where}: codebook needs integer weight codes (weight_bits 2..8), got weight_bits "
            f"{c.weight_bits}; set weight_bits to 2..8 or drop codebook"
        )
    rules.one_of(c.nm_groups, NM_GROUPS, where, PolicyError, field="nm_groups")
    if c.nm_groups != "contiguous" and nm is None:
        raise PolicyError(
            f"{where}: nm_groups={c.nm_groups!r} needs an N:M pattern such as '2:4', got pattern "
            f"{c.pattern!r}; set an N:M pattern or drop nm_groups"
        )
    r = c.rank
    if r is not None:
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise PolicyError(f"{where}: rank must be null, an int >= 1 or a ratio in (0, 1], got {r!r}")
        if isinstance(r, int) and r < 1:
            raise PolicyError(f"{where}: an absolute rank must be >= 1, got {r}")
        if isinstance(r, float) and not (0.0 < r <= 1.0):
            raise PolicyError(f"{where}: a rank ratio must be in (0, 1], got {r}")


def make_layer_config(raw: Any, where: str, base: LayerConfig | None = None) -> LayerConfig:
    """Build a LayerConfig from a plain mapping, filling unset fields from ``base``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a mapping of fields, got {type(raw).__name__} {raw!r}")
    unknown = sorted(set(raw) - set(FIELD_NAMES))
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {unknown}; allowed fields: {list(FIELD_NAMES)}")
    values = asdict(base or LayerConfig())
    wb = raw.get("weight_bits", 8)
    if base is not None and base.act_dynamic and "act_dynamic" not in raw and (
        raw.get("act_bits", 8) != 8 or (isinstance(wb, int) and wb > 8) or raw.get("codebook") is True
    ):
        values["act_dynamic"] = False  # a layer that leaves dynamic int8 does not inherit it
    values.update(raw)
    nm = parse_nm(values["pattern"]) if isinstance(values["pattern"], str) else None
    if nm is not None and not (0 < nm[0] < nm[1] <= 64):
        raise PolicyError(f"{where}: pattern {values['pattern']!r} needs 0 < N < M <= 64")
    if nm is not None and "sparsity" not in raw:
        values["sparsity"] = 1.0 - nm[0] / nm[1]
    if isinstance(values["sparsity"], int) and not isinstance(values["sparsity"], bool):
        values["sparsity"] = float(values["sparsity"])
    if nm is not None and math.isclose(values["sparsity"], 1.0 - nm[0] / nm[1], abs_tol=1e-9):
        values["sparsity"] = 1.0 - nm[0] / nm[1]
    try:
        return LayerConfig(**values)
    except PolicyError as e:
        raise PolicyError(str(e).replace("layer config", where, 1)) from None


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation during the fine-tune: loss = alpha*T^2*KL(soft) + (1-alpha)*hard."""

    temperature: float = 4.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        rules.as_float(self.temperature, "", 0, 100, open_lo=True, error=PolicyError, field="distill.temperature")
        rules.as_float(self.alpha, "", 0, 1, error=PolicyError, field="distill.alpha")

    def to_dict(self) -> dict[str, float]:
        return {"temperature": float(self.temperature), "alpha": float(self.alpha)}
