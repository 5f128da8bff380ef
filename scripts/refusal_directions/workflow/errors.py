"""The one exception the workflow reports to the user as a single line, without a traceback."""


class UserError(Exception):
    """A problem with the user's input or environment: bad data, a missing file, an unreachable Hub."""
