"""The one exception type for bad user input.

Raised with a one-line message that names the offending file (and line) or argument; the CLI prints it as
``error: <message>`` and exits with status 2, without a traceback.
"""
import argparse
import sys


class InputError(Exception):
    """Bad input from the user: unreadable image, malformed annotation, wrong checkpoint, unknown folder."""


def run_reporting_input_errors(fn, *args) -> int:
    """Call ``fn(*args)``; an ``InputError`` becomes ``error: <message>`` on stderr and exit status 2."""
    try:
        fn(*args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def refuse_unusable(problems: list[str], total: int, noun: str, hint: str = "") -> None:
    """Raise one ``InputError`` naming every unusable item (nothing when ``problems`` is empty): a single problem
    is the message itself, several are a count line followed by one line each."""
    note = f" ({hint})" if hint else ""
    if len(problems) == 1:
        raise InputError(problems[0] + note)
    if problems:
        raise InputError(f"{len(problems)} of {total} {noun} are unusable{note}:\n  " + "\n  ".join(problems))


def positive_minutes(value: str) -> float:
    """argparse type of ``--max-minutes``: a positive number (0 would be read as "no budget", or divide by zero)."""
    try:
        minutes = float(value)
    except ValueError:
        minutes = float("nan")
    if not minutes > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {value!r}")
    return minutes
