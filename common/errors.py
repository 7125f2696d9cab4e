"""The one exception a user sees as a single line: bad input they can fix."""


class UsageError(Exception):
    """Bad arguments, data files or output directory.

    The scripts print it as one line on stderr and exit with status 2; it is
    raised before anything in the run directory is changed."""
