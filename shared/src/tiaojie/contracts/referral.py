"""Events produced by the referral service and accepted from agencies."""

from __future__ import annotations

__all__: list[str] = []
