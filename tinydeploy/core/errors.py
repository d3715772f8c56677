"""The one exception type for problems a user can fix."""


class TinyDeployError(Exception):
    """A user-facing problem: one line saying what, where, and what to do.

    The CLI prints the message and exits with ``exit_code``; anything else
    that escapes is a bug in tinydeploy and may show a traceback.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
