"""Cost of reading hostile or large input files, and the artifact header's share of the file.

1. The reader (issue 20): a policy file at the size limit (1 MB of layer entries) parsed and
   validated, a 4 MB file refused, a "billion laughs" file refused: wall time and peak
   Python memory (tracemalloc), each in a fresh subprocess.
2. The artifact header: file bytes vs tensor bytes on each built-in task's model, fp32 and
   int8, predicted by ``file_bytes`` and measured on the saved file.

    python bench/bench_inputs.py
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "policy just under the 1 MB limit (29k layer entries)": ("layers", 29_000),
    "4 MB policy (refused)": ("layers", 130_000),
    "billion laughs, 10^9 values (refused)": ("bomb", 0),
}

_CHILD = r"""
import json, sys, time, tracemalloc
from autocompress import Policy
from autocompress.errors import AutocompressError

def load():
    try:
        return f"loaded, {len(Policy.load(sys.argv[1]).layers)} entries"
    except AutocompressError as e:
        return "refused: " + str(e).split(": ", 1)[1][:48]

t = time.perf_counter()
outcome = load()
dt = time.perf_counter() - t
tracemalloc.start()  # a second time, traced (tracing slows it down, so it is not timed)
load()
print(json.dumps({"s": dt, "peak_mb": tracemalloc.get_traced_memory()[1] / 2**20, "outcome": outcome}))
"""


def _write(path: Path, kind: str, n: int) -> None:
    if kind == "layers":
        path.write_text("layers:\n" + "".join(f"  block{i}.conv: {{weight_bits: 8}}\n" for i in range(n)))
    else:
        lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
        path.write_text("\n".join(lines) + "\n")


def reader_rows(tmp: Path) -> list[str]:
    rows = ["| input | file bytes | outcome | seconds | peak Python memory |", "|---|---|---|---|---|"]
    for label, (kind, n) in CASES.items():
        path = tmp / f"{kind}{n}.yaml"
        _write(path, kind, n)
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        rows.append(f"| {label} | {path.stat().st_size:,} | {r['outcome']} | {r['s']:.3f} | {r['peak_mb']:.0f} MB |")
    return rows


def header_rows(tmp: Path) -> list[str]:
    from autocompress import Policy, compress, file_bytes, save_artifact, size_bytes
    from autocompress.tasks import TASKS, get_task

    rows = ["| model (task) | policy | tensor bytes | file bytes (predicted = measured) | header share |",
            "|---|---|---|---|---|"]
    for name in ("digits-cnn", "digits-resdw", "mnist1d-cnn", "mnist-lenet300", "mnist-lenet5"):
        if name not in TASKS.names():
            continue
        from autocompress.models import MODELS

        task = get_task(name)
        model = task.create_model(0).eval()
        x = MODELS.get(task.model).example_input(batch=8)
        for label, policy in (("fp32", Policy()),
                              ("int8", Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}}))):
            deploy = compress(model, policy, form="deploy", example_input=x)
            info = save_artifact(deploy, policy, tmp / f"{name}-{label}.safetensors", x)
            predicted = file_bytes(model, policy, x)
            assert predicted == info.file_bytes and size_bytes(model, policy, x) == info.tensor_bytes
            share = 1 - info.tensor_bytes / info.file_bytes
            rows.append(f"| {task.model} ({name}) | {label} | {info.tensor_bytes:,} | {info.file_bytes:,} | "
                        f"{share:.1%} |")
    return rows


def main() -> None:
    import torch

    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("\n".join(reader_rows(tmp)))
        print()
        print("\n".join(header_rows(tmp)))


if __name__ == "__main__":
    main()
