"""Composition root of the referral service.

Referrals and transfers between bodies are built on this host (issue: referral); for now
the service runs, creates its topics and answers its probes.
"""

from __future__ import annotations

from fastapi import FastAPI

from tiaojie.contracts import topics
from tiaojie.referral.settings import ReferralSettings
from tiaojie.runtime.host import ServiceHost


def create_app(settings: ReferralSettings | None = None) -> FastAPI:
    settings = settings or ReferralSettings()
    host = ServiceHost(settings, produces=[topics.REFERRALS, topics.AGENCIES])
    return host.http_app(
        [],
        title="Tiaojie referral 诉调/警调/访调对接",
        description="Court, police and petition referrals; transfers between bodies; deadlines.",
    )
