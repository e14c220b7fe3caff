"""Real components for the cluster tests: a PostgreSQL schema, CLI processes, a loopback Ray
cluster, a TCP proxy that can be cut. Imported by the ``test_cluster_*`` modules."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PG_ENV = "AUTOCOMPRESS_TEST_POSTGRES"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
HOW_TO_PG = (
    "start one (README: 'Running on a cluster'), e.g. `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust "
    f"-e POSTGRES_DB=test postgres:16`, or point {PG_ENV} at a server"
)
FAST = {"AUTOCOMPRESS_HEARTBEAT_S": "1", "AUTOCOMPRESS_GRACE_S": "6", "AUTOCOMPRESS_RETRY_S": "0.2"}


def pg_base() -> str:
    return os.environ.get(PG_ENV) or PG_DEFAULT


def pg_reason() -> str | None:
    """Why PostgreSQL tests cannot run here (None: they can)."""
    try:
        import psycopg
    except ImportError:
        return "the psycopg driver is not installed: pip install 'autocompress[postgres]'"
    try:
        psycopg.connect(pg_base(), connect_timeout=3).close()
    except Exception as e:
        return f"PostgreSQL at {pg_base()} is unreachable ({type(e).__name__}); {HOW_TO_PG}"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A storage URL whose tables live in a fresh schema, dropped afterwards."""
    reason = pg_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"ac_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{pg_base()}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_base(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def write_study(tmp: Path, name: str = "tiny", **over: Any) -> Path:
    """A tiny study on digits-cnn: random sampler, short fine-tune, no warm start."""
    raw: dict[str, Any] = {
        "name": name,
        "task": "digits-cnn",
        "space": str(REPO / "search_spaces" / "joint.yaml"),
        "objectives": {"metric": "maximize", "size": "minimize", "latency": {"device": "xeon-8480"}},
        "budget": {"trials": 4},
        "sampler": {"name": "random"},
        "finetune": {"steps": 10, "eval_every": 5, "batch_size": 32},
        "warm_start": False,
        "early_stop": False,
        "output_dir": str(tmp / "out"),
    }
    raw.update(over)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **FAST, "PYTHONUNBUFFERED": "1", **extra}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autocompress.cli", *args], env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def spawn(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "autocompress.cli", *args], env=env or cli_env(),
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def load(name: str, url: str) -> optuna.Study:
    from autocompress.study._storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url, workers=1 if url.startswith("sqlite") else 2))


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def running_trial_of(study_name: str, url: str, proc: subprocess.Popen[bytes], log: Path,
                     timeout: float = 240) -> optuna.trial.FrozenTrial:
    """Wait until process ``proc`` runs a trial whose policy is sampled; fails early if it died."""

    def look() -> optuna.trial.FrozenTrial | None:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(Exception):
            for t in load(study_name, url).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                if str(t.user_attrs.get("worker", "")).endswith(f":{proc.pid}") and "size_bytes" in t.user_attrs:
                    return t
        return None

    return wait_for(look, timeout, "a trial to start")  # type: ignore[no-any-return]


def check_budget_kept(study: optuna.Study, budget: int) -> list[optuna.trial.FrozenTrial]:
    """No trial lost (none RUNNING/WAITING), none counted twice; returns the COMPLETE ones."""
    from autocompress.study._budget import census

    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states, states
    c = census(study)
    assert c.counted == budget, (c, states)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    origins = [t.system_attrs.get("failed_trial", t.number) for t in complete]
    assert len(set(origins)) == len(origins), f"a candidate completed twice: {origins}"
    return complete


SMALL_SPACE = {"rules": [{"layers": ["@last"], "weight_bits": [2, 3, 4, 5, 6, 8]}]}  # 6 candidates: collisions


def check_each_candidate_tuned_once(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """No candidate was fine-tuned twice: the trials that ran a fine-tune (COMPLETE, not a
    reused duplicate, plus counted failures) hold distinct candidate keys and distinct params;
    every duplicate carries its twin's values. Returns the fine-tuned COMPLETE trials."""
    from autocompress.study._claims import CANDIDATE, DUPLICATE_OF

    by_number = {t.number: t for t in study.trials}
    tuned = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
             and DUPLICATE_OF not in t.user_attrs]
    keys = [t.user_attrs[CANDIDATE] for t in tuned]
    assert len(set(keys)) == len(keys), f"a candidate was fine-tuned twice: {sorted(keys)}"
    params = [tuple(sorted(t.params.items())) for t in tuned]
    assert len(set(params)) == len(params), f"the same parameters were fine-tuned twice: {params}"
    for t in study.trials:
        if DUPLICATE_OF in t.user_attrs and t.state == optuna.trial.TrialState.COMPLETE:
            twin = by_number[t.user_attrs[DUPLICATE_OF]]
            assert t.values == twin.values and t.user_attrs[CANDIDATE] == twin.user_attrs[CANDIDATE]
    return tuned


class Proxy:
    """A TCP forwarder to ``target``; ``cut()`` closes it and every connection through it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        self.server.close()
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
