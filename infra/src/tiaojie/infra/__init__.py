"""Local infrastructure (Kafka, PostgreSQL, FerretDB) started by the project itself, and
the `tiaojie` command line."""
