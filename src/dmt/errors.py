"""The one exception type for user mistakes.

A ``UserError`` is caught by the command line, printed as one line (``error: ...``) and
turned into exit status 2. Its message names the file, option or key at fault and what was
expected. Anything else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input (config, data layout, file), reported without a traceback."""
