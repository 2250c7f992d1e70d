"""Tiaojie intake service."""
