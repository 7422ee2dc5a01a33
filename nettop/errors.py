"""Errors that end nettop with one line on stderr, never a traceback."""


class NettopError(Exception):
    """A problem the user can act on; `str()` is the whole message."""

    exit_code = 1


class ProbeUnavailable(NettopError):
    """A probe cannot run on this kernel or machine; the reason says what fixes it."""
