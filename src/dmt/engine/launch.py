"""What the launcher (torchrun, srun + torchrun ...) told this process, read from the environment.

Torch-free on purpose: the command line reads the rank before it knows whether the command will
need torch at all (``dmt predict MODEL.onnx`` does not). :mod:`dmt.engine.distributed` re-exports
these; joining the process group happens there.
"""

from __future__ import annotations

import os


def launch_world_size() -> int:
    """Processes the launcher started (``WORLD_SIZE``), readable before the group is joined."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launch_rank() -> int:
    """The rank the launcher gave this process (``RANK``; 0 without a launcher), before joining."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def launched() -> bool:
    """Whether this process was started by a launcher with more than one process in the job."""
    return launch_world_size() > 1
