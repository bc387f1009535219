"""The one exception type for bad user input.

Raised with a one-line message that names the offending file (and line) or argument; the CLI prints it as
``error: <message>`` and exits with status 2, without a traceback.
"""


class InputError(Exception):
    """Bad input from the user: unreadable image, malformed annotation, wrong checkpoint, unknown folder."""
