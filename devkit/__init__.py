"""What the tests and the benchmarks share: broker identities (access), the mesh of service
processes (mesh), dropping a namespace (namespace), and the labelled sets with their
measures (intake_labelled, library_labelled).

Neither imports the other: both import this. Like tests/ and benchmarks/ it is a plain
package of the repository, importable from its root (pytest's `pythonpath`, the
benchmarks' sys.path line), never installed into a service or its image.
"""
