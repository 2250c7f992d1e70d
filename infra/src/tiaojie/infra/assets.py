"""Browser assets of the web console, installed from the npm registry into the cache
(never committed): Apache ECharts for the leadership charts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ECHARTS = "echarts"
ECHARTS_VERSION = "6.1.0"


def fetch_console_assets(target: Path) -> Path:
    """`npm install --prefix target echarts@VERSION` once; the console serves dist/ from it."""
    marker = target / f".{ECHARTS}-{ECHARTS_VERSION}"
    if marker.exists() and (target / "node_modules" / ECHARTS / "dist" / "echarts.min.js").exists():
        return target
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to install the console's chart library (echarts)")
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(target),
            "--no-audit",
            "--no-fund",
            "--silent",
            f"{ECHARTS}@{ECHARTS_VERSION}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    marker.write_text(ECHARTS_VERSION)
    return target
