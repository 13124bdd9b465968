"""AuthZEN Bridge: an OAuth 2.0 token gateway that asks an OpenID AuthZEN PDP before it
issues a token, and the PDP itself."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("authzen-bridge")
except PackageNotFoundError:  # run from a folder that was never installed
    __version__ = "unknown"
