"""Tiaojie referral service."""
