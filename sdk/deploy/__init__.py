"""Deploy a .tflite to a device, benchmark it there, and bring the log back.

>>> from edgesmith.deploy import deploy, BenchOptions
>>> result = deploy("model.tflite", "local", out_dir="logs",
...                 options=BenchOptions(runs=200, threads=4, profile="rpi5"))
>>> result["log"], result["summary"]["latency_ms"]["p50"] > 0
('logs/model.local.jsonl', True)

Targets: ``local``, ``ssh://[user@]host[:port][/dir][?python=PATH]`` and
``adb://SERIAL``; see docs/deploy.md. With ``"ssh://pi@raspberrypi"`` the same
call copies the model (and, the first time, edgesmith's runtime) to the board
and benchmarks it there.
"""

from .errors import (AppMissingError, AuthError, DeviceNotConnectedError, HostKeyError, RemoteDiskFullError,
                     RemotePythonError, RemoteRunError, TargetError, TargetURLError, UnreachableError)
from .run import convert_and_deploy, deploy, deploy_many
from .target import BenchOptions, Target
from .urls import parse_target

__all__ = ["AppMissingError", "AuthError", "BenchOptions", "DeviceNotConnectedError", "HostKeyError",
           "RemoteDiskFullError", "RemotePythonError", "RemoteRunError", "Target", "TargetError", "TargetURLError",
           "UnreachableError", "convert_and_deploy", "deploy", "deploy_many", "parse_target"]
