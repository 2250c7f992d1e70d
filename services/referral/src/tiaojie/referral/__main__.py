"""`python -m tiaojie.referral`: run the referral service."""

from __future__ import annotations

from tiaojie.referral.app import create_app
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.host import serve


def main() -> None:
    settings = ReferralSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
