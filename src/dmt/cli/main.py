"""The ``dmt`` command: one small module per subcommand.

Exit statuses: 0 done; 2 a mistake in the input or a file-system error (one line on stderr,
naming the file or key); 75 stopped by SIGTERM after checkpointing (re-run the same command
to resume); 130 stopped by Ctrl-C; anything else is a bug and keeps its traceback.

Starting the command imports no torch (each command imports what it needs when it runs), so
``dmt --help`` and a mistyped option answer at once. A command that
joins a process group (``run``, ``demo``, ``eval`` under torchrun) leaves it itself
(:func:`dmt.engine.distributed.joined`), and tells of a process that stopped with
:class:`~dmt.errors.ProcessLost`: nothing here depends on which modules a command imported.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dmt import __version__
from dmt.cli.help_format import DefaultsOnce
from dmt.engine import signals
from dmt.engine.launch import launch_rank, launched
from dmt.errors import ProcessLost, UserError, unwrap_worker_error

COMMANDS = ("run", "demo", "presets", "models", "eval", "convert_coco", "bench", "report", "predict", "export",
            "check", "status", "import_cmd", "suggest")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced, e.g. under pytest)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("dmt")
    rank = launch_rank()
    # under torchrun rank 0 speaks for the job; the others only warn, and say who they are
    logger.setLevel(logging.DEBUG if verbose else logging.INFO if rank == 0 else logging.WARNING)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        prefix = f"[rank {rank}] " if rank else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.propagate = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmt", description="Dynamic Mutual Training for semi-supervised classification and segmentation.",
        formatter_class=DefaultsOnce)
    parser.add_argument("--version", action="version", version=f"dmt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    import importlib

    for name in COMMANDS:
        importlib.import_module(f"dmt.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    # Overrides may follow options (`dmt run P --out D k=v`): argparse leaves those unparsed.
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    _setup_logging(args.verbose)
    rank = launch_rank()
    who = f" (rank {rank})" if launched() else ""
    try:
        with signals.installed():
            status = int(args.func(args) or 0)
            sys.stdout.flush()  # here, where a reader gone away is caught, not at the interpreter's exit
            return status
    except UserError as exc:
        exc = unwrap_worker_error(exc) or exc  # raised in a DataLoader worker: its own line
        # an error every process raised alike (found by rank 0) is printed once
        if rank == 0 or not getattr(exc, "shared", False):
            print(f"error{who}: {exc}", file=sys.stderr)
        return 2
    except signals.StopRequested as exc:
        if rank == 0:
            done = f"{exc.where}; " if exc.where else ""
            print(f"stopped by {signal_name(exc.signum)}{who}: {done}re-run the same command to resume",
                  file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        if rank == 0:
            print("interrupted: re-run the same command to resume", file=sys.stderr)
        return signals.EXIT_INTERRUPTED
    except ProcessLost as exc:  # another process died (killed, out of memory): one line, no traceback of ours
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`dmt presets | head`): nothing more to say to it, and nothing wrong
        # with the command; stdout goes to /dev/null so that Python's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # the file system refused (read-only, full, permissions): the path and the reason
        print(f"error{who}: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if who:  # a failing process names itself; torchrun then stops the others
            print(f"error{who}: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the path(s) it concerns and the system's reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(str(p) for p in paths)}: {reason}" if paths else reason


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
