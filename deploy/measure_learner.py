"""What one learner costs a course server: memory and CPU of a lesson's kernel, and of an idle user server.

    python deploy/measure_learner.py                 # lessons 01 and 02
    python deploy/measure_learner.py 01 07 09        # lessons whose name contains these

Each solution notebook runs top to bottom in a fresh kernel with one thread per kernel (as the hub
config sets it: OMP_NUM_THREADS=1 ...), while the kernel's memory is sampled every 0.2 s. Prints,
per lesson: wall time, the kernel's CPU seconds, its peak resident memory (RSS) and its peak
proportional share (PSS: shared libraries divided among the processes using them, which is what
many learners together really take). Then the same for an idle JupyterLab server with nbgrader,
which every learner also has while logged in.
"""
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")}


def memory(process):
    """(RSS, PSS) in bytes of a process and its children; PSS falls back to RSS where it cannot be read."""
    rss = pss = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        except psutil.Error:
            pass
    return rss, pss


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.process, self.peak_rss, self.peak_pss, self.done = psutil.Process(pid), 0, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            rss, pss = memory(self.process)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.done.wait(0.2)


def run_lesson(path):
    notebook = nbformat.read(path, as_version=4)
    os.environ.update(ONE_THREAD)  # the kernel inherits them
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        process = psutil.Process(client.km.provisioner.process.pid)
        sampler = Sampler(process.pid)
        sampler.start()
        for index, cell in enumerate(client.nb.cells):
            client.execute_cell(cell, index)
        cpu = process.cpu_times()
        sampler.done.set()
        sampler.join()
    return time.perf_counter() - start, cpu.user + cpu.system, sampler.peak_rss, sampler.peak_pss


def idle_server():
    """RSS and PSS of a JupyterLab server (nbgrader extensions loaded) 20 s after it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               "--IdentityProvider.token=measure", f"--notebook-dir={ROOT}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token=measure", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(20)
        return memory(psutil.Process(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(patterns):
    patterns = patterns or ["01", "02"]
    gib = 2 ** 30
    print(f"{'lesson':<32}{'wall s':>8}{'CPU s':>8}{'peak RSS GiB':>14}{'peak PSS GiB':>14}", flush=True)
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        if any(p in path.stem for p in patterns):
            wall, cpu, rss, pss = run_lesson(path)
            print(f"{path.stem:<32}{wall:>8.1f}{cpu:>8.1f}{rss / gib:>14.2f}{pss / gib:>14.2f}", flush=True)
    rss, pss = idle_server()
    print(f"{'idle JupyterLab server':<32}{'':>8}{'':>8}{rss / gib:>14.2f}{pss / gib:>14.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
