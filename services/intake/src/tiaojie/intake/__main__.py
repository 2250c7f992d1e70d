"""`python -m tiaojie.intake`: run the intake service."""

from __future__ import annotations

import os

from tiaojie.intake.app import create_app
from tiaojie.intake.settings import IntakeSettings
from tiaojie.runtime.host import serve


def main() -> None:
    settings = IntakeSettings()
    # uvicorn trusts X-Forwarded-For from loopback unless told otherwise; the app decides
    # from TIAOJIE_TRUSTED_PROXIES alone (tiaojie.intake.app), so uvicorn trusts nobody.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
