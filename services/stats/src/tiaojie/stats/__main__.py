"""`python -m tiaojie.stats`: run the stats service."""

from __future__ import annotations

from tiaojie.runtime.host import serve
from tiaojie.stats.app import create_app
from tiaojie.stats.settings import StatsSettings


def main() -> None:
    settings = StatsSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
