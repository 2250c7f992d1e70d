"""Tiaojie registry service."""
