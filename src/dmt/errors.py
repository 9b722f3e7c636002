"""The exception types the command line turns into one line, and the unwrapping of a worker's.

A ``UserError`` is caught by the command line, printed as one line (``error: ...``) and
turned into exit status 2. Its message names the file, option or key at fault and what was
expected. Anything else that escapes is a bug and keeps its traceback, except
:class:`ProcessLost`: another process of the job stopped, and the survivor says so in one line.

Torch-free: the command line imports this before it knows whether the command needs torch.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (config, data layout, file), reported without a traceback."""


class ProcessLost(Exception):
    """A collective failed because another process of the job stopped; the message names it.

    Raised by :func:`dmt.engine.distributed.joined` around a command's work.
    """


# How DataLoader re-raises an error of a worker process: the exception's type, rebuilt with a
# message holding the worker's whole traceback, whose last line is "dmt.errors.UserError: <ours>".
_WORKER_PREFIX = "Caught UserError in DataLoader worker"
_ORIGINAL_LINE = f"{UserError.__module__}.{UserError.__qualname__}: "


def unwrap_worker_error(exc: BaseException) -> UserError | None:
    """The user's one-line error inside a :class:`UserError` re-raised by a DataLoader worker.

    Returns ``None`` for any other exception (including a UserError raised in this process).
    """
    text = str(exc)
    if not isinstance(exc, UserError) or not text.startswith(_WORKER_PREFIX) or _ORIGINAL_LINE not in text:
        return None
    original = UserError(text.rsplit(_ORIGINAL_LINE, 1)[1].strip())
    original.shared = getattr(exc, "shared", False)  # type: ignore[attr-defined]
    return original
