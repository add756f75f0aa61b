"""One exception hierarchy for hull and hull-runtime.

Messages say what failed, on what, and what to do. The CLIs map these to exit codes
(Docker's 125/126/127 for `hull`, runc's 1 for `hull-runtime`).
"""

import errno as _errno
from hull import osfast as os


class HullError(Exception):
    """Base of every error hull reports to a user."""

    exit_code = 125


class UsageError(HullError):
    """The command line was wrong (unknown flag, bad value)."""


class NotFound(HullError):
    """A container, image, network, file ... does not exist."""


class Conflict(HullError):
    """The thing already exists or is in a state that forbids the operation."""


class SpecError(HullError):
    """An OCI config.json (or part of it) is invalid. `path` is the JSON path of the problem."""

    def __init__(self, path, message):
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}" if path else message)


class KernelError(HullError):
    """A system call failed. Carries errno, the call and the path/argument it was about."""

    def __init__(self, err, call, path=None, hint=None):
        self.errno = err
        self.call = call
        self.path = path
        where = f" {path}" if path else ""
        text = f"{call}{where}: {os.strerror(err)}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)

    @property
    def name(self):
        return _errno.errorcode.get(self.errno, str(self.errno))
