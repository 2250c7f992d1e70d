"""Tiaojie stats service."""
