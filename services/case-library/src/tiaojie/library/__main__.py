"""`python -m tiaojie.library`: run the case-library service."""

from __future__ import annotations

from tiaojie.library.app import create_app
from tiaojie.library.settings import LibrarySettings
from tiaojie.runtime.host import serve


def main() -> None:
    settings = LibrarySettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
