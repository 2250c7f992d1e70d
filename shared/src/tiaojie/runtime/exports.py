"""What every spreadsheet a service writes (CSV, xlsx) does to the text people typed in:
a cell that would start a formula in Excel or WPS is shown, never run."""

from __future__ import annotations

from typing import Any

# Characters that make a spreadsheet read a cell as a formula (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text that would start a formula gets a leading single quote; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
