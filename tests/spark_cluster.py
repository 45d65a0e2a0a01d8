"""A real Spark standalone cluster on loopback, for tests: one master and N workers.

    with standalone_cluster(workers=2) as cluster:
        subprocess.run([cluster.spark_submit, "--master", cluster.master_url, "job.py"], check=True)
        pids = cluster.executor_pids()          # the CoarseGrainedExecutorBackend JVMs of a running app
        cluster.kill_executor(pids[0])          # SIGKILL one of them (a lost executor)

The master and the workers are the JVM daemons that ``spark-class`` starts (pyspark's own launcher
script), on 127.0.0.1 with free ports, their logs and work directories under a temporary directory.
Entering waits until every worker has registered with the master (the master's ``/json`` page);
leaving stops every process the cluster started, executors included, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package (bin/spark-class, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children, ...)."""
    tree = _children()
    out, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(tree.get(child, []))
    return out


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class StandaloneCluster:
    """A started cluster: its master URL, its processes and its files."""

    master_url: str
    master_ui: str
    root: Path
    env: dict
    master: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def spark_submit(self) -> str:
        return str(spark_home() / "bin" / "spark-submit")

    def state(self) -> dict:
        """The master's JSON status page: workers, aliveworkers, activeapps, completedapps, ..."""
        with urllib.request.urlopen(self.master_ui + "/json", timeout=5) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        return int(self.state().get("aliveworkers", 0))

    def executor_pids(self) -> list[int]:
        """PIDs of the executor JVMs (``CoarseGrainedExecutorBackend``) the workers have started, sorted."""
        pids = []
        for worker in self.workers:
            for pid in descendants(worker.pid):
                if EXECUTOR_CLASS in cmdline(pid) and _alive(pid):
                    pids.append(pid)
        return sorted(pids)

    def wait_for_executors(self, count: int, timeout: float = 120.0) -> list[int]:
        """Wait until at least ``count`` executor JVMs run; their PIDs."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.executor_pids()
            if len(pids) >= count:
                return pids
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pids)} executors after {timeout:.0f}s, expected {count}; "
                                   f"logs in {self.root}")
            time.sleep(0.2)

    def kill_executor(self, pid: int | None = None, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` (default SIGKILL) to one executor JVM (the first running one if ``pid`` is None)."""
        pids = self.executor_pids()
        if pid is None:
            if not pids:
                raise RuntimeError("no executor is running")
            pid = pids[0]
        elif pid not in pids:
            raise ValueError(f"{pid} is not an executor of this cluster (executors: {pids})")
        os.kill(pid, sig)
        return pid

    def logs(self) -> str:
        """The master's and workers' logs and the executors' stderr, for a failing test's message."""
        parts = []
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and (path.suffix in (".out", ".log") or path.name == "stderr"):
                parts.append(f"==> {path} <==\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        # a session of its own, so that stopping the daemon never signals the test process
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    everything = []
    for proc in procs:
        everything.extend(descendants(proc.pid))
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in everything:           # executors and Python workers outliving their worker
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def standalone_cluster(workers: int = 2, cores_per_worker: int = 1, memory: str = "1g",
                       python: str | None = None, timeout: float = 90.0, keep_dir: bool = False):
    """Start a master and ``workers`` workers on 127.0.0.1; yield a :class:`StandaloneCluster`.

    ``memory`` is what each worker offers to executors (``spark.executor.memory`` must fit in it);
    ``python`` is the interpreter of the PySpark workers (default: this one). Everything is stopped on
    exit; the temporary directory (logs, work dirs) is removed unless ``keep_dir``.
    """
    home = spark_home()
    root = Path(tempfile.mkdtemp(prefix="spark-cluster-"))
    python = python or sys.executable
    env = dict(os.environ)
    env.update({
        "SPARK_HOME": str(home),
        "SPARK_LOG_DIR": str(root / "logs"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(root / "local"),
        "SPARK_DAEMON_MEMORY": "256m",
        "PYSPARK_PYTHON": python,
    })
    env.pop("SPARK_MASTER_HOST", None)
    for name in ("logs", "local"):
        (root / name).mkdir()
    spark_class = str(home / "bin" / "spark-class")
    port, ui_port = free_port(), free_port()
    master_url, master_ui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    master = _start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(port), "--webui-port", str(ui_port)], env, root / "logs" / "master.out")
    cluster = StandaloneCluster(master_url, master_ui, root, env, master)
    try:
        for i in range(workers):
            work = root / f"worker-{i}"
            work.mkdir()
            cluster.workers.append(_start(
                [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                 "--webui-port", str(free_port()), "--cores", str(cores_per_worker), "--memory", memory,
                 "--work-dir", str(work), master_url],
                env, root / "logs" / f"worker-{i}.out"))
        deadline = time.monotonic() + timeout
        while True:
            for proc in [master, *cluster.workers]:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited with {proc.returncode}:\n{cluster.logs()}")
            try:
                if cluster.alive_workers() >= workers:
                    break
            except OSError:
                pass                               # the master's UI is not up yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} workers did not register in {timeout:.0f}s:\n{cluster.logs()}")
            time.sleep(0.5)
        yield cluster
    finally:
        _stop([*cluster.workers, master])
        if not keep_dir:
            shutil.rmtree(root, ignore_errors=True)
