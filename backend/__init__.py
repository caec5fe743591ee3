"""Killa Tamata: the gateway, ledger, jobs and execution layer."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("killa")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

API_VERSION = "0.7.0"
