"""The provider daemon: connects out to DCP, reports telemetry, runs jobs and reports their results."""

from dcp import __version__ as DAEMON_VERSION

__all__ = ["DAEMON_VERSION"]
