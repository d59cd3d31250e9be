"""The one exception type a user sees as a sentence instead of a traceback."""


class KmlpError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits 1."""
