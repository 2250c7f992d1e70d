"""Tiaojie web console: the pages people use; it owns no case data."""
