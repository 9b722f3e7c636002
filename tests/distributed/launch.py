"""Start commands on two CPU processes with torchrun (gloo), as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).with_name("workers.py")


def env(**extra: str) -> dict[str, str]:
    # one thread per process: two processes on two cores
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], nproc: int = 2, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node N ARGS`` on this machine; output captured."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}", *args]
    return subprocess.run(cmd, env=env(**extra_env), capture_output=True, text=True, timeout=timeout)


def workers(case: str, out: Path, *args: str, nproc: int = 2, **extra_env: str) -> subprocess.CompletedProcess:
    """Run ``workers.py CASE OUT ARGS`` on ``nproc`` processes (1: plain python, no launcher)."""
    if nproc == 1:
        return subprocess.run([sys.executable, str(WORKERS), case, str(out), *args], env=env(**extra_env),
                              capture_output=True, text=True, timeout=300)
    return torchrun([str(WORKERS), case, str(out), *args], nproc=nproc, **extra_env)
