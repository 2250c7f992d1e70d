"""Moved to devkit.mesh (the benchmarks use it too); this name stays for the test modules
that still import it from here, until their import lines move."""

from devkit.mesh import Mesh, ServiceProcess, free_port

__all__ = ["Mesh", "ServiceProcess", "free_port"]
