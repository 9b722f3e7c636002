"""The thin engine: the training loop (AMP, optimizer, schedule, EMA), checkpoints, processes, progress.

Knows no task, dataset or model: a *step function* ``(batch, step) -> {"loss", **scalars}`` is
all it runs. ``distributed`` is the one module that knows ``torch.distributed``; ``sharding`` says
how the processes of a job share a stage's work. Imports ``config``, ``errors`` and torch only.
"""
