"""The exception family for problems a user can fix; each kind carries its exit code.

The CLI prints the message (one line: what, where, what to do) and exits with
``exit_code``; anything else that escapes is a bug in tinydeploy.
"""


class TinyDeployError(Exception):
    """A user-facing problem. Raise a subclass where one fits; the base class means bad input."""
    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(TinyDeployError):
    """A model, board, dataset or option tinydeploy cannot take as given (exit 2)."""
    exit_code = 2


class MissingTool(TinyDeployError):
    """A compiler, emulator or Python package this machine lacks (exit 2)."""
    exit_code = 2


class Mismatch(TinyDeployError):
    """The firmware's outputs differ from the reference, or a benchmark regressed (exit 1)."""
    exit_code = 1


class CannotBuildHere(TinyDeployError):
    """The project is rendered, but this machine cannot build it (exit 3)."""
    exit_code = 3


class Interrupted(TinyDeployError):
    """The user stopped the command (Ctrl-C; exit 130)."""
    exit_code = 130


class OutputError(BadInput):
    """An output path tinydeploy may not or cannot write: a user's folder, a file as parent,
    a read-only or full file system (exit 2)."""
    exit_code = 2


class ProtocolError(TinyDeployError):
    """The firmware's report cannot be trusted: the board reset, dropped, repeated or garbled lines
    (exit 1: the outputs were not verified)."""
    exit_code = 1
