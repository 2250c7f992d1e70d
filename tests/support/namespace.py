"""Moved to devkit.namespace (the benchmarks use it too); this name stays for the test
modules that still import it from here, until their import lines move."""

from devkit.namespace import drop_namespace

__all__ = ["drop_namespace"]
