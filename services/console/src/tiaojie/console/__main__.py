"""`python -m tiaojie.console`: run the web console."""

from __future__ import annotations

from tiaojie.console.app import create_app
from tiaojie.console.settings import ConsoleSettings
from tiaojie.runtime.host import serve


def main() -> None:
    settings = ConsoleSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
