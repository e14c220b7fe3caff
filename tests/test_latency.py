"""Latency models: analytic roofline behaviour, device profiles, measured table and cache."""

from __future__ import annotations

import dataclasses
import math
import platform
import random
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from torch.overrides import TorchFunctionMode

from autocompress.cost import LeafPlan, plan
from autocompress.cost.latency import (
    TIMING_METHOD,
    AnalyticModel,
    LeafTable,
    MeasuredModel,
    device_profile,
    fingerprint,
    get_latency_model,
    known_devices,
    leaf_key,
)
from autocompress.cost.latency._device import _shipped, every_source
from autocompress.cost.latency._table import interpolate, leaf_class
from autocompress.cost.profiling._policies import random_policy
from autocompress.cost.profiling.check import mape, spearman, within
from autocompress.errors import AutocompressError, ConfigError
from autocompress.models import MODELS, create_model
from autocompress.policy import Policy

SHIPPED = ("a100", "h100", "orin", "xeon-8480", "cortex-a76")


def leaf(*, n: int = 256, batch: int = 1, wb: int = 32, ab: int = 32, sparsity: float = 0.0,
         pattern: str = "unstructured", kind: str = "linear") -> LeafPlan:
    kernel = "int8" if wb <= 8 and ab == 8 else "fp32"
    if kind == "conv2d":
        return LeafPlan(layer="c", leaf="c", kind="conv2d", in_channels=n, out_channels=n,
                        kernel_size=(3, 3), groups=1, stride=(1, 1), has_bias=False,
                        weight_shape=(n, n, 3, 3), input_shape=(batch, n, 14, 14),
                        output_shape=(batch, n, 14, 14), macs=n * n * 9 * 196, calls=1,
                        weight_bits=wb, act_bits=ab, sparsity=sparsity, pattern=pattern,
                        kernel=kernel)  # type: ignore[arg-type]
    return LeafPlan(layer="fc", leaf="fc", kind="linear", in_channels=n, out_channels=n,
                    kernel_size=(), groups=1, stride=(), has_bias=True, weight_shape=(n, n),
                    input_shape=(batch, n), output_shape=(batch, n), macs=n * n, calls=1,
                    weight_bits=wb, act_bits=ab, sparsity=sparsity, pattern=pattern,
                    kernel=kernel)  # type: ignore[arg-type]


def ms(p: LeafPlan, device: str) -> float:
    return AnalyticModel().predict([p], device_profile(device)).leaves[0].ms


# ---- device profiles -------------------------------------------------------------------
def _bare_numbers(raw: object) -> list[object]:
    """Numbers (and booleans, lists) that are not the value of a {value, source} pair."""
    if isinstance(raw, dict):
        if set(raw) == {"value", "source"}:
            return []
        return [x for k, v in raw.items() if k != "format" for x in _bare_numbers(v)]
    return [raw] if isinstance(raw, (int, float, list)) else []


@pytest.mark.parametrize("name", SHIPPED)
def test_profiles_load_and_every_number_has_a_source(name: str) -> None:
    dev = device_profile(name)
    assert dev.name == name and dev.peak_tops["fp32"] > 0 and dev.memory_gbs > 0
    raw = yaml.safe_load(_shipped()[name].read_text())
    sources = every_source(raw)
    assert len(sources) >= 18 and not _bare_numbers(raw), f"{name}: numbers without a source"
    for key, src in sources.items():
        assert len(src.strip()) > 10, f"{name}: {key} lacks a real source"
    assert set(sources) == set(dev.sources)


def test_profile_names_and_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    assert set(SHIPPED) | {"local"} == set(known_devices())
    with pytest.raises(ConfigError, match="a100"):
        device_profile("a10O")
    with pytest.raises(ConfigError, match="autocompress profile"):
        device_profile("local")


def test_profile_without_source_is_rejected() -> None:
    from autocompress.cost.latency._device import profile_from_dict

    raw = yaml.safe_load(_shipped()["a100"].read_text())
    raw["specs"]["memory_gbs"] = {"value": 1555}
    with pytest.raises(ConfigError, match="memory_gbs"):
        profile_from_dict(raw, "a100.yaml")


# ---- analytic model -------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_analytic_monotone_in_macs(name: str) -> None:
    times = [ms(leaf(n=n, batch=16), name) for n in (64, 256, 1024, 4096)]
    assert times == sorted(times) and times[-1] > times[0]


@pytest.mark.parametrize("name", SHIPPED)
def test_analytic_monotone_in_weight_bits(name: str) -> None:
    # batch 1: memory bound, so fewer stored bits can only help (never hurt)
    t = {wb: ms(leaf(n=4096, wb=wb), name) for wb in (4, 8, 16, 32)}
    assert t[4] <= t[8] <= t[16] <= t[32]


def test_weight_only_bits_read_packed_where_kernels_exist() -> None:
    big = leaf(n=8192)
    assert ms(dataclasses.replace(big, weight_bits=4), "a100") < 0.5 * ms(big, "a100")
    # no packed weight-only kernels on the mobile CPU profile below 8 bits: 4 == 8 bits
    w4 = ms(dataclasses.replace(big, weight_bits=4), "cortex-a76")
    assert w4 == pytest.approx(ms(dataclasses.replace(big, weight_bits=8), "cortex-a76"))


@pytest.mark.parametrize("name", SHIPPED)
def test_int8_faster_than_fp32_with_int8_kernels(name: str) -> None:
    fp32 = leaf(kind="conv2d", n=256, batch=8)
    int8 = dataclasses.replace(fp32, weight_bits=8, act_bits=8, kernel="int8")
    assert device_profile(name).int8_kernels
    assert ms(int8, name) < ms(fp32, name)


def test_no_int8_speedup_without_int8_kernels() -> None:
    dev = dataclasses.replace(device_profile("xeon-8480"), int8_kernels=False, fp16_kernels=False)
    fp32 = leaf(kind="conv2d", n=256, batch=8)
    int8 = dataclasses.replace(fp32, weight_bits=8, act_bits=8, kernel="int8")
    model = AnalyticModel()
    assert model.predict([int8], dev).total_ms >= model.predict([fp32], dev).total_ms * 0.999


@pytest.mark.parametrize("name", SHIPPED)
def test_unstructured_sparsity_below_threshold_gives_nothing(name: str) -> None:
    dense = leaf(kind="conv2d", n=256, batch=8, wb=8, ab=8)
    thr = device_profile(name).unstructured_min_sparsity
    below = dataclasses.replace(dense, sparsity=round(thr - 0.05, 3))
    assert ms(below, name) == pytest.approx(ms(dense, name))
    above = dataclasses.replace(dense, sparsity=0.99)
    assert ms(above, name) < ms(dense, name)


@pytest.mark.parametrize(("name", "faster"), [("a100", True), ("h100", True), ("orin", True),
                                              ("xeon-8480", False), ("cortex-a76", False)])
def test_two_four_speeds_up_only_on_sparse_tensor_cores(name: str, faster: bool) -> None:
    dense = leaf(kind="conv2d", n=512, batch=32, wb=8, ab=8)
    nm = dataclasses.replace(dense, sparsity=0.5, pattern="2:4")
    if faster:
        assert ms(nm, name) < 0.8 * ms(dense, name)
    else:
        assert ms(nm, name) == pytest.approx(ms(dense, name))


def test_estimate_records_model_and_device() -> None:
    two = [leaf(), dataclasses.replace(leaf(n=64), leaf="fc2", layer="fc2")]
    est = get_latency_model("analytic").predict(two, device_profile("h100"))
    d = est.to_dict()
    assert d["latency_model"] == "analytic" and d["device"] == "h100"
    assert est.total_ms == pytest.approx(sum(est.leaf_ms.values()) + est.rest_ms)
    assert est.rest_ms > 0


def test_registry_lists_models_on_unknown_name() -> None:
    assert isinstance(get_latency_model("measured"), MeasuredModel)
    with pytest.raises(AutocompressError, match="analytic"):
        get_latency_model("analytik")


class _NoTorch(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        raise AssertionError(f"a latency prediction ran a torch op: {func}")


def test_prediction_runs_no_torch_op(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    leaves = [leaf(n=32 + 8 * i, wb=(4, 8, 32)[i % 3], ab=(8, 32)[i % 2]) for i in range(50)]
    table = LeafTable(fingerprint(1))
    for p in leaves[::3]:
        table.add_leaf(p, 0.01 + p.macs * 1e-7, "deploy")
    dev = dataclasses.replace(device_profile("xeon-8480"), fingerprint=table.fingerprint.key)
    with _NoTorch():
        AnalyticModel().predict(leaves, device_profile("a100"))
        est = MeasuredModel(table).predict(leaves, dev)
    assert {x.basis for x in est.leaves} <= {"measured", "interpolated", "estimated"}


# ---- measured table -------------------------------------------------------------------
def test_fingerprint_keys_threads_and_cpu() -> None:
    a, b = fingerprint(1), fingerprint(2)
    assert a.key != b.key and a.cpu == b.cpu and a.torch == torch.__version__
    assert a.key in str(LeafTable.path_for(a))
    assert a.key == fingerprint(1).key


def test_fingerprint_keys_the_timing_method() -> None:
    a = fingerprint(1)
    assert a.timing == TIMING_METHOD and dataclasses.replace(a, timing="older").key != a.key


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator pinning is glibc's mallopt")
def test_timing_pins_the_allocator_so_forwards_do_not_page_fault() -> None:
    """Unpinned, glibc maps and unmaps activation buffers on every forward (16,000-25,000 page
    faults for 20 of these); pinned, a warm forward reuses its heap."""
    code = textwrap.dedent("""
        import resource, sys, torch
        torch.set_num_threads(1)
        if sys.argv[1] == "pin":
            from autocompress.cost.profiling._timing import steady_allocator
            assert steady_allocator() and steady_allocator()
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(32, 64, 3, padding=1))
        x = torch.randn(8, 3, 32, 32)
        with torch.inference_mode():
            for _ in range(3):
                m(x)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(20):
                m(x)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    faults = {how: int(subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True,
                                      check=True).stdout) for how in ("pin", "no")}
    # pinned: 0 usually, 512 in some runs (the heap growing by 2 MiB once); unpinned: 16,000-25,000
    assert faults["pin"] < 2000 < 8000 < faults["no"], faults


def test_cache_round_trip(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    t = LeafTable(fingerprint(1))
    t.add_leaf(leaf(), 0.25, "deploy")
    t.set_overhead("sig", 0.1, 1e-6)
    path = t.save()
    assert path.is_relative_to(tmp_path)
    back = LeafTable.load(fingerprint(1))
    assert back.leaves == t.leaves and back.overheads == t.overheads
    assert back.lookup(leaf()) == (0.25, "measured")
    assert LeafTable.load(fingerprint(2)).leaves == {}


def test_measured_model_refuses_other_devices() -> None:
    t = LeafTable(fingerprint(1))
    with pytest.raises(ConfigError, match="only predicts for the machine"):
        MeasuredModel(t).predict([leaf()], device_profile("a100"))


def test_interpolation_sanity() -> None:
    pts = []
    for n in (64, 128, 256, 512, 1024, 2048):
        p = leaf(n=n, batch=8)
        t = LeafTable(fingerprint(1))
        t.add_leaf(p, 0.01 + 2e-8 * p.macs * 8, "deploy")
        pts.append(next(iter(t.leaves.values())))
    cls = leaf_class(leaf())
    pred = [interpolate(pts, cls, 8.0 * n * n, 4.0 * (n * n + 16 * n)) for n in (96, 384, 1536)]
    truth = [0.01 + 2e-8 * 8 * n * n for n in (96, 384, 1536)]
    assert all(p is not None and abs(p - t) / t < 0.15 for p, t in zip(pred, truth, strict=True))
    assert pred == sorted(pred)  # type: ignore[type-var]
    assert interpolate(pts, "conv2d|dense|int8|w8a8|dense", 1.0, 1.0) is None


def test_leaf_key_separates_what_changes_the_kernel() -> None:
    base = leaf()
    assert leaf_key(base) == leaf_key(dataclasses.replace(base, layer="x", leaf="x", calls=3))
    for change in ({"weight_bits": 8, "act_bits": 8, "kernel": "int8"},
                   {"sparsity": 0.5, "pattern": "2:4"}, {"input_shape": (2, 256)}):
        assert leaf_key(base) != leaf_key(dataclasses.replace(base, **change))


def test_profile_plan_measures_real_deploy_leaves(tmp_path, monkeypatch) -> None:
    from autocompress.cost.profiling.profiler import profile_plan

    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    model = create_model("tiny-mlp")
    x = MODELS.get("tiny-mlp").example_input(4)
    policy = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8},
                               "layers": {"fc2": {"rank": 0.5, "weight_bits": 32,
                                                  "act_bits": 32}}})
    leaves = plan(model, policy, x)
    table = profile_plan(leaves, threads=1)
    assert LeafTable.load(fingerprint(1)).leaves == table.leaves
    assert {leaf_key(p) for p in leaves} <= set(table.leaves)
    dev = dataclasses.replace(device_profile("xeon-8480"), name="local",
                              fingerprint=table.fingerprint.key)
    est = MeasuredModel(table).predict(leaves, dev)
    assert all(x.basis == "measured" and x.ms > 0 for x in est.leaves)
    assert torch.get_num_threads() >= 1


# ---- validation helpers ---------------------------------------------------------------
def test_scores() -> None:
    true = [1.0, 2.0, 3.0, 4.0]
    assert mape(true, true) == 0.0 and within([1.05, 2.5, 3.0, 4.0], true) == 0.75
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([4, 3, 2, 1], true) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1, 1], true))


def test_random_policies_are_valid() -> None:
    model = create_model("tiny-resdw-cnn")
    x = MODELS.get("tiny-resdw-cnn").example_input(2)
    from autocompress.cost.profiling._policies import prunable_groups

    groups = prunable_groups(model, x)
    rng = random.Random(0)
    for _ in range(5):
        leaves = plan(model, random_policy(model, groups, rng), x)
        assert leaves and all(p.macs > 0 for p in leaves)


def test_estimate_by_names_reads_local_profile_and_table(tmp_path, monkeypatch) -> None:
    from autocompress.cost.latency import estimate_latency
    from autocompress.cost.latency._device import local_profile_path

    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    raw = yaml.safe_load(_shipped()["xeon-8480"].read_text())
    raw.update(name="local", fingerprint=fingerprint(1).key, threads=1)
    local_profile_path(1).parent.mkdir(parents=True)
    local_profile_path(1).write_text(yaml.safe_dump(raw))
    table = LeafTable(fingerprint(1))
    table.add_leaf(leaf(), 0.5, "deploy")
    table.save()
    est = estimate_latency([leaf()], "measured", "local")
    assert (est.model, est.device, est.leaf_ms) == ("measured", "local", {"fc": 0.5})
    assert estimate_latency([leaf()], "analytic", "orin").device == "orin"


def test_measured_model_applies_rest_and_in_model_factor() -> None:
    from autocompress.cost.latency._table import model_signature, output_elements

    leaves = [leaf(batch=4)]
    table = LeafTable(fingerprint(1))
    table.add_leaf(leaves[0], 1.0, "deploy")
    table.set_overhead(model_signature(leaves), 0.5, 1e-3, 1.2)
    dev = dataclasses.replace(device_profile("xeon-8480"), fingerprint=table.fingerprint.key)
    est = MeasuredModel(table).predict(leaves, dev)
    rest = 0.5 + 1e-3 * output_elements(leaves)
    assert est.rest_ms == pytest.approx(rest)
    assert est.total_ms == pytest.approx(1.2 + rest)
    assert any("x1.200" in n for n in est.notes)


def test_measured_model_adds_the_int8_call_term_to_int8_leaves_only() -> None:
    from autocompress.cost.latency._table import model_signature

    fp, q8 = leaf(batch=4), dataclasses.replace(leaf(batch=4, wb=8, ab=8), leaf="fc8", layer="fc8")
    table = LeafTable(fingerprint(1))
    table.add_leaf(fp, 1.0, "deploy")
    table.add_leaf(q8, 0.25, "deploy")
    table.set_overhead(model_signature([fp, q8]), 0.0, 0.0, 1.1, 0.002)
    dev = dataclasses.replace(device_profile("xeon-8480"), fingerprint=table.fingerprint.key)
    est = MeasuredModel(table).predict([fp, q8], dev)
    by_leaf = {x.leaf: x.ms for x in est.leaves}
    assert by_leaf == pytest.approx({"fc": 1.1, "fc8": 0.25 * 1.1 + 0.002})
    assert any("+2.00 us per int8 call" in n for n in est.notes)


def test_in_model_fit_recovers_factor_and_int8_term_within_bounds() -> None:
    from autocompress.cost.profiling.profiler import _fit_in_model

    rows = [(a, n, 1.05 * a + 0.0015 * n) for a, n in [(0.05, 0), (0.04, 0), (0.07, 2), (0.1, 4), (0.06, 1)]]
    assert _fit_in_model(rows) == pytest.approx((1.05, 0.0015))
    assert _fit_in_model([(0.05, 0, 0.06), (0.04, 0, 0.048)]) == pytest.approx((1.2, 0.0))  # no int8 leaves
    k, q = _fit_in_model([(0.05, 0, 0.04), (0.06, 2, 0.05)])  # faster in the model: clamped
    assert k == 1.0 and q == 0.0


def test_interleaved_check_times_round_robin_and_keeps_each_best_round(tmp_path, monkeypatch) -> None:
    from autocompress.cost.profiling import check

    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    model = create_model("tiny-mlp")
    x = MODELS.get("tiny-mlp").example_input(4)
    plans = [plan(model, Policy(), x), plan(model, Policy.from_dict({"default": {"weight_bits": 8}}), x)]
    calls: list[str] = []
    slow = iter([3.0, 1.0, 2.0, 5.0])  # model timings in call order: round 1 (m0, m1), round 2 (m0, m1)

    def fake_leaf(p, threads):
        calls.append("leaf")
        return 1.0 + 0.5 * (len(calls) < 5)  # the first round's leaves are slower

    def fake_model(m, x, threads, rounds):
        calls.append(f"model{m}")
        return next(slow)

    monkeypatch.setattr(check, "measure_leaf", fake_leaf)
    monkeypatch.setattr(check, "measure_model", fake_model)
    table = LeafTable(fingerprint(1))
    best = check._interleaved([0, 1], plans, x, table, threads=1, rounds=2)  # type: ignore[list-item]
    assert best == [2.0, 1.0]
    n_leaves = len({leaf_key(q) for p in plans for q in p})
    assert calls == (["leaf"] * n_leaves + ["model0", "model1"]) * 2
    assert all(v["ms"] == 1.0 for v in table.leaves.values())


def test_check_takes_given_policies_after_the_dense_model(tmp_path, monkeypatch) -> None:
    from autocompress.cost.profiling import check

    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    model = create_model("tiny-mlp")
    x = MODELS.get("tiny-mlp").example_input(4)
    timed: list[int] = []
    monkeypatch.setattr(check, "profile_model", lambda *a, **k: None)
    monkeypatch.setattr(check, "measure_leaf", lambda p, threads: 0.01)
    monkeypatch.setattr(check, "measure_model", lambda m, x, threads, rounds: timed.append(1) or 0.05)
    monkeypatch.setattr(check, "local_device", lambda threads: dataclasses.replace(
        device_profile("xeon-8480"), name="local", fingerprint=fingerprint(1).key))
    given = [Policy.from_dict({"default": {"weight_bits": 8}}), Policy.from_dict({"default": {"sparsity": 0.5}})]
    report = check.run_check(model, x, policies=given, rounds=2, interleave=True)
    assert len(report.measured_ms) == 3 and len(report.predicted_ms["measured"]) == 3
    assert len(timed) == 2 * 3 + 1  # 2 rounds x 3 policies, then the dense model again for the drift


def test_profile_model_adds_random_calibration_policies_to_the_fit(tmp_path, monkeypatch) -> None:
    """In-model factor and rest are fitted over the channel-pruned copies plus ``calibration``
    random policies (int8, low rank, ...), always the same ones (their own seed)."""
    from autocompress.cost.latency._table import model_signature
    from autocompress.cost.profiling import profiler

    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    model = create_model("tiny-mlp")
    x = MODELS.get("tiny-mlp").example_input(4)
    seen: list[list[Policy]] = [[], []]
    real_plan = profiler.plan

    def run(i: int) -> LeafTable:
        def recording_plan(m, policy, ex):
            seen[i].append(policy)
            return real_plan(m, policy, ex)

        monkeypatch.setattr(profiler, "plan", recording_plan)
        return profiler.profile_model(model, x, threads=1, calibration=3, save=False)

    monkeypatch.setattr(profiler, "measure_leaf", lambda p, threads=1: 0.1)
    monkeypatch.setattr(profiler, "measure_model", lambda m, x, threads=1, **_: 1.0)
    monkeypatch.setattr(profiler, "measure_rest", lambda *a, **k: 0.5)
    table = run(0)
    assert len(seen[0]) == 3 + 3  # dense + 2 channel ratios, then the calibration policies
    calib = seen[0][3:]
    assert any(cfg.weight_bits == 8 or cfg.rank is not None for p in calib for _, cfg in p.layers)
    fit = table.overheads[model_signature(plan(model, Policy(), x))]
    assert fit["k"] >= 1.0 and fit["c0"] == pytest.approx(0.5)
    run(1)
    assert seen[1] == seen[0]  # the same calibration policies every time


def test_search_fits_the_model_once_per_machine_then_reuses_the_cached_fit(tmp_path, monkeypatch) -> None:
    from autocompress.cost.profiling import check, profiler
    from autocompress.search._latency import latency_predictor

    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    model = create_model("tiny-mlp")
    x = MODELS.get("tiny-mlp").example_input(4)
    monkeypatch.setattr(check, "local_device", lambda threads: dataclasses.replace(
        device_profile("xeon-8480"), name="local", fingerprint=fingerprint(1).key))
    monkeypatch.setattr(profiler, "measure_leaf", lambda p, threads=1: 0.1)
    monkeypatch.setattr(profiler, "measure_model", lambda m, x, threads=1, **_: 1.0)
    monkeypatch.setattr(profiler, "measure_rest", lambda *a, **k: 0.5)
    fits: list[int] = []
    real = profiler.profile_model
    monkeypatch.setattr(profiler, "profile_model", lambda *a, **k: fits.append(1) or real(*a, **k))
    for _ in range(2):
        latency_predictor("local", model, x)
    assert fits == [1]  # the second study start found the fit in the cache
    table = LeafTable.load(fingerprint(1))
    assert table.fitted_with(plan(model, Policy(), x)) == profiler.CALIBRATION_POLICIES
    sig, fit = next(iter(table.overheads.items()))
    table.set_overhead(sig, 0.1, 0.0, 1.0, calibration=0, dense=fit["dense"])  # an older, thinner fit
    table.save()
    latency_predictor("local", model, x)
    assert fits == [1, 1]
    model.fc1, model.fc2 = torch.nn.Linear(64, 96), torch.nn.Linear(96, 24)  # same layer names, wider
    latency_predictor("local", model, x)
    assert fits == [1, 1, 1]  # another model's fit is not reused


def test_latency_check_and_profile_cli_run_for_real(tmp_path, monkeypatch, capsys) -> None:
    """The two commands end to end on the untrained digits CNN (2 policies, 1 round; timings
    are real, their values are not asserted)."""
    from autocompress.cli import main

    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path))
    assert main(["profile", "--task", "digits-cnn", "--calibration", "1"]) == 0
    table = LeafTable.load(fingerprint(1))
    assert table.leaves and all(fit["calibration"] == 1 for fit in table.overheads.values())
    assert main(["latency-check", "--task", "digits-cnn", "--policies", "2", "--rounds", "1",
                 "--calibration", "0"]) == 0
    out = capsys.readouterr().out
    assert "digits-cnn (2 policies" in out and "measured" in out and "analytic" in out
