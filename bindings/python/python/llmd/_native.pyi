"""Type stubs of the native module ``llmd._native`` (checked by mypy.stubtest)."""

__all__ = ["__version__"]

__version__: str
