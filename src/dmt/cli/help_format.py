"""The help formatter of every ``dmt`` command: each option's default said once.

argparse's :class:`~argparse.ArgumentDefaultsHelpFormatter` appends ``(default: X)`` to every
option, also where the help text already says what the default is (``default: the run's
eval.window, else whole images``) and where the value means "not given" (``None``, ``False``),
which printed two defaults, the second one wrong in spirit. This one appends it only where the
help is silent about it and the default is a value.
"""

from __future__ import annotations

import argparse


class DefaultsOnce(argparse.ArgumentDefaultsHelpFormatter):
    """:class:`argparse.ArgumentDefaultsHelpFormatter` without a second or an empty default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)
