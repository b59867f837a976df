"""The load test's server side: the app server on loopback, and its memory and CPU (and the browser's) read from
/proc while the sessions run. Used by scripts/load_test.py."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------- /proc sampling
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds utime+stime, RSS MB) of a live process; None when it is gone."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / TICK, int(rest[21]) * PAGE / 2**20


def process_tree(root: int) -> dict[int, tuple[float, float]]:
    """pid → (CPU s, RSS MB) for ``root`` and every descendant alive now."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = {}, [root]
    while todo and len(tree) < 10_000:
        pid = todo.pop()
        if pid in stats and pid not in tree:
            tree[pid] = stats[pid][1:]
            todo += children.get(pid, [])
    return tree


def yield_cpu(pid: int, niceness: int) -> None:
    """Make a client process yield the CPU to the server: the niceness of each of its threads (Linux sets it per
    thread) and of its scheduler autogroup (Chromium starts its processes in sessions of their own). Called again
    every second: Chromium sets its renderers' priorities itself (runs as root here, it may lower them again), so
    one renice at start does not hold — measured, 16 sessions' Chromium "at nice 19" still took 1.4 of the 2
    cores, with renderers back at nice 0. A gone process or thread is skipped."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) != niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except OSError:
            pass
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))
    except OSError:
        pass


class Sampler(threading.Thread):
    """Peak RSS of the server process (every 0.25 s) and, every second, CPU and RSS of the server's and the
    client's (this script's children: Playwright's driver and Chromium) process trees. The CPU of a process that
    exited between samples is counted up to its last sample."""

    def __init__(self, server: int, client_nice: int = 0, apart: tuple[int, ...] | list[int] = ()):
        super().__init__(daemon=True)
        self.server, self.stop = server, threading.Event()
        self.apart = list(apart)                     # children that are neither (the observer): not counted, not reniced
        self.client_nice = client_nice
        self.rss_peak = self.rss_last = 0.0
        self.cpu = {"server": {}, "client": {}}      # pid → latest CPU seconds seen
        self.tree_rss_peak = {"server": 0.0, "client": 0.0}
        self.marks: dict[str, dict] = {}
        self.lock = threading.Lock()                 # mark() runs on the browser's thread

    def sample_trees(self):
        server = process_tree(self.server)
        apart = {p for root in self.apart for p in process_tree(root)}
        client = {p: v for p, v in process_tree(os.getpid()).items()
                  if p not in server and p not in apart and p != os.getpid()}
        if self.client_nice:
            for pid in client:
                yield_cpu(pid, self.client_nice)
        with self.lock:
            for side, tree in (("server", server), ("client", client)):
                self.cpu[side].update({pid: cpu for pid, (cpu, _) in tree.items()})
                self.tree_rss_peak[side] = max(self.tree_rss_peak[side], sum(rss for _, rss in tree.values()))

    def run(self):
        tick = 0
        while not self.stop.is_set():
            stat = proc_stat(self.server)
            if stat is not None:
                self.rss_last = stat[2]
                self.rss_peak = max(self.rss_peak, stat[2])
            if tick % 4 == 0:
                self.sample_trees()
            tick += 1
            self.stop.wait(0.25)

    def mark(self, name: str):
        self.sample_trees()
        with self.lock:
            self.marks[name] = {"rss_mb": round(self.rss_last, 1), "cpu": {s: dict(v) for s, v in self.cpu.items()}}

    def cpu_between(self, side: str, first: str, last: str) -> float:
        a, b = self.marks[first]["cpu"][side], self.marks[last]["cpu"][side]
        return round(sum(cpu - a.get(pid, 0.0) for pid, cpu in b.items()), 1)


# ---------------------------------------------------------------------------------------------- server
def start_server(runs: Path, log: Path, fast: bool, trace: Path | None = None,
                 cpus: set[int] | None = None) -> tuple[subprocess.Popen, str]:
    """The app on a free loopback port, healthy; ``trace``: the file its script runs are timed into (app/trace.py);
    ``cpus``: the only cores it (every thread, the worker's included) may run on."""
    port = free_port()
    env = {**os.environ, "UNLEARNING_LAB_RUNS": str(runs), "OMP_WAIT_POLICY": "PASSIVE",
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))}
    env.pop("UNLEARNING_LAB_TRACE", None)
    if trace is not None:
        env["UNLEARNING_LAB_TRACE"] = str(trace)
    env.pop("UNLEARNING_LAB_FAST", None)
    if fast:
        env["UNLEARNING_LAB_FAST"] = "1"
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app/streamlit_app.py"),
                                "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port",
                                str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                               cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               # A session (so a scheduler autogroup) of its own: --client-nice renices the
                               # client's autogroups, and Playwright's driver shares this script's — before this,
                               # that reniced the server (and its worker process) to the client's niceness too.
                               start_new_session=True,
                               # set in the child before exec: every thread it starts inherits the mask
                               preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the server did not become healthy in 180 s; see {log}")
