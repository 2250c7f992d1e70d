"""Events produced by the stats service (alerts)."""

from __future__ import annotations

__all__: list[str] = []
