"""``dmt run PRESET_OR_YAML [key=value ...] [--out DIR] [--smoke] [--nproc N]``.

Under ``torchrun`` every process runs this same command; ``--nproc N`` starts torchrun for one
machine itself.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from dmt.cli.help_format import DefaultsOnce
from dmt.engine.launch import launch_rank, launched
from dmt.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment: baseline, curriculum phases, evaluation",
                       description="Run (or resume) an experiment. Re-running the same command on the same "
                                   "--out resumes: finished stages are skipped, an interrupted one continues.",
                       formatter_class=DefaultsOnce)
    p.add_argument("config", metavar="PRESET_OR_YAML", help="a preset name (see `dmt presets`) or a YAML file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, e.g. data.root=/data")
    p.add_argument("--out", default=None, help="run directory (default: runs/<preset name>)")
    p.add_argument("--smoke", action="store_true", help="every stage for a few steps on a few images")
    p.add_argument("--nproc", type=int, default=0, metavar="N",
                   help="start N processes on this machine (torchrun --standalone --nproc-per-node N); "
                        "for several machines call torchrun yourself (see docs/many-gpus.md)")
    p.set_defaults(func=main)


def torchrun_command(args: argparse.Namespace) -> list[str]:
    """The torchrun command line that runs this same ``dmt run`` on ``args.nproc`` processes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "dmt", "run", args.config, *args.overrides]
    if args.out:
        cmd += ["--out", args.out]
    if args.smoke:
        cmd.append("--smoke")
    return cmd


def run_forwarding_sigterm(cmd: list[str]) -> int:
    """Run ``cmd`` (torchrun) and wait; a SIGTERM for us is passed on to it, so its processes
    checkpoint and stop instead of being killed. Ctrl-C reaches it from the terminal by itself."""
    proc = subprocess.Popen(cmd)
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, lambda s, f: proc.send_signal(s)),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    try:
        return proc.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def default_out(config: str, smoke: bool) -> Path:
    return Path("runs") / (Path(config).stem + ("-smoke" if smoke else ""))


def main(args: argparse.Namespace) -> int:
    from dmt.run.api import experiment_config
    from dmt.run.runner import run_stages
    from dmt.run.summary import format_table

    cfg = experiment_config(args.config, args.overrides, smoke=args.smoke)  # the API's configuration
    if args.nproc < 0:
        raise UserError(f"--nproc: expected a positive number of processes, got {args.nproc}")
    if args.nproc > 1 and not launched():
        return run_forwarding_sigterm(torchrun_command(args))
    out = Path(args.out) if args.out else default_out(args.config, args.smoke)
    results = run_stages(cfg, out)
    if launch_rank() == 0:  # under torchrun: the job's rank 0 speaks for it
        print(format_table(results))
        print(f"run directory: {out}")
    return 0
