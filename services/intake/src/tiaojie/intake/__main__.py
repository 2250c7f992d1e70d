"""`python -m tiaojie.intake`: run the intake service."""

from __future__ import annotations

from tiaojie.intake.app import create_app
from tiaojie.intake.settings import IntakeSettings
from tiaojie.runtime.host import serve


def main() -> None:
    settings = IntakeSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
