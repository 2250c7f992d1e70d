"""Helpers shared by the test tiers (servers, namespaces, service processes)."""
