"""A run: pre-flight check, the runner that executes a plan's stages in a run directory, status and summaries.

``runner.run_stages`` executes a configuration in a run directory: it checks data and weights
(``preflight``), opens the run directory (``rundir``: lock, config.yaml, results.json), runs each
unfinished stage with its task's runner and writes the summary (``summary``: results table and
results.png). ``api.run_experiment`` (public as :func:`dmt.run_experiment`) and ``dmt run`` turn a
preset, a YAML file or a config object into that configuration and call it. ``status`` reads a run
without touching it. The only layer that knows the run directory's layout. Imports ``tasks`` and
everything below it.
"""
