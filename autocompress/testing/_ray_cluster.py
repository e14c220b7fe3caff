"""A Ray cluster of one or more nodes on loopback addresses, started and stopped by PID.

Each node gets its own loopback address (head 127.0.0.2, then 127.0.0.3, ...): on one
machine, 127.0.0.1 is rewritten to another interface and a second node hangs. ``ray start``
is wrapped in ``timeout``. ``ray stop`` would end every Ray process on the machine, so
:meth:`LocalRayCluster.stop` ends only the processes this object started: every member of
the process groups its ``ray start`` calls created, and their descendants.

Example::

    with LocalRayCluster(nodes=2) as cluster:
        run_search(cfg, address=cluster.address)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class LocalRayCluster:
    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, start_timeout_s: int = 60) -> None:
        self.nodes = nodes
        self.cpus = cpus_per_node
        self.start_timeout_s = start_timeout_s
        self.tmp = Path(tempfile.mkdtemp(prefix="acray-", dir="/tmp"))  # unix socket paths < 108 chars
        self.port = _free_port()
        self.address = f"127.0.0.2:{self.port}"
        # loopback only: no token auth (a ~/.ray/auth_token left by a local ray.init would break joining)
        self.env = {"RAY_AUTH_MODE": "disabled", **os.environ, "RAY_TMPDIR": str(self.tmp),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.groups: list[int] = []

    def __enter__(self) -> LocalRayCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalRayCluster:
        self._ray("--head", "--node-ip-address=127.0.0.2", f"--port={self.port}", "--include-dashboard=false")
        for i in range(1, self.nodes):
            self._ray(f"--address={self.address}", f"--node-ip-address=127.0.0.{2 + i}")
        return self

    def _ray(self, *args: str) -> None:
        ray = str(Path(sys.executable).with_name("ray"))
        cmd = ["timeout", str(self.start_timeout_s), ray, "start", *args, f"--num-cpus={self.cpus}",
               "--disable-usage-stats"]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.groups.append(proc.pid)
        out, _ = proc.communicate(timeout=self.start_timeout_s + 30)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} exited with {proc.returncode}:\n{out.decode()[-2000:]}")

    def pids(self) -> set[int]:
        """Every live process this cluster started."""
        table = _process_table()
        ours = {pid for pid, (_, group) in table.items() if group in self.groups}
        while kids := {pid for pid, (parent, _) in table.items() if parent in ours} - ours:
            ours |= kids
        return ours

    def stop(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            end = time.monotonic() + wait_s
            while self.pids() and time.monotonic() < end:
                time.sleep(0.2)
        shutil.rmtree(self.tmp, ignore_errors=True)


def process_tree_hwm(pid: int) -> int:
    """Peak resident memory (VmHWM) of one process in bytes; 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) from /proc (Linux)."""
    table: dict[int, tuple[int, int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(d.name)] = (int(fields[1]), int(fields[2]))
    return table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
