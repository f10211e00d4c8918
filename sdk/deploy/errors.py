"""Errors of deploy targets: each a one-line message saying what to fix."""

from edgesmith.runtime.errors import EdgesmithError, RunFailedError


class TargetError(EdgesmithError):
    """A deploy target that cannot be used as given (exit 2)."""


class TargetURLError(TargetError):
    """The target URL does not parse."""


class UnreachableError(TargetError):
    """The host did not answer within the connect timeout."""


class AuthError(TargetError):
    """The host refused the key (edgesmith never falls back to a password)."""


class HostKeyError(TargetError):
    """The host's key does not match the one recorded for it."""


class RemotePythonError(TargetError):
    """Python is missing on the target, too old, or lacks what edgesmith needs."""


class RemoteDiskFullError(TargetError):
    """The target's disk has no room for the upload."""


class DeviceNotConnectedError(TargetError):
    """The adb device is not attached, offline or unauthorized."""


class AppMissingError(TargetError):
    """The Android demo app is not installed on the device."""


class RemoteRunError(RunFailedError):
    """The benchmark started on the target but failed there (exit 1)."""
