"""Where things live: the project root, its git-ignored .data folder, the download cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tiaojie.runtime.settings import default_cache_dir


def project_root() -> Path:
    """The workspace root (the folder whose pyproject declares the uv workspace)."""
    env = os.environ.get("TIAOJIE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        candidate = parent / "pyproject.toml"
        if candidate.exists() and "[tool.uv.workspace]" in candidate.read_text(encoding="utf-8"):
            return parent
    raise RuntimeError("cannot find the Tiaojie workspace root (set TIAOJIE_ROOT)")


@dataclass(frozen=True)
class Layout:
    """The folders of one local deployment."""

    root: Path
    data: Path
    cache: Path

    @classmethod
    def default(cls) -> Layout:
        root = project_root()
        data = Path(os.environ.get("TIAOJIE_DATA_DIR", root / ".data")).resolve()
        cache = Path(os.environ.get("TIAOJIE_CACHE_DIR", default_cache_dir())).resolve()
        return cls(root=root, data=data, cache=cache)

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    @property
    def run(self) -> Path:
        return self.data / "run"

    @property
    def infra_assets(self) -> Path:
        return self.root / "infra"

    def ensure(self) -> None:
        for folder in (self.data, self.logs, self.run, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
