"""The ``dmt`` command: one small module per subcommand (``run``, ``check``, ``demo``, ``eval``, ``predict`` ...).

The top layer: each module parses its own options and calls one function of ``run``, ``predict``,
``report`` or ``bench``. Nothing below ``cli`` parses a command line. May import every package.
"""
