"""`python -m tiaojie.registry`: run the mediator-registry service."""

from __future__ import annotations

from tiaojie.registry.app import create_app
from tiaojie.registry.settings import RegistrySettings
from tiaojie.runtime.host import serve


def main() -> None:
    settings = RegistrySettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
