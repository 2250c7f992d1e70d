"""Tiaojie case-library service (人民调解案例库)."""
