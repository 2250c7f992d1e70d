"""Demo accounts of a development deployment, one or more per role, in the Linyi demo
counties; the mediator is linked to a demo mediator so that "my cases" works."""

from __future__ import annotations

from tiaojie.console.service import AccountSpec
from tiaojie.contracts.common import Role

LANSHAN = "371302"  # 兰山区
LUOZHUANG = "371311"  # 罗庄区


def demo_accounts(city_counties: list[str]) -> list[AccountSpec]:
    """The demo accounts; city-wide roles get every county of the city."""
    everywhere = tuple(city_counties) or (LANSHAN, LUOZHUANG)
    return [
        AccountSpec(
            "desk.lanshan", "兰山区受理窗口", Role.DESK, (LANSHAN,), organisation_id=f"org-{LANSHAN}-centre"
        ),
        AccountSpec(
            "desk.luozhuang",
            "罗庄区受理窗口",
            Role.DESK,
            (LUOZHUANG,),
            organisation_id=f"org-{LUOZHUANG}-centre",
        ),
        AccountSpec(
            "mediator.lanshan",
            "兰山街道调解员",
            Role.MEDIATOR,
            (LANSHAN,),
            mediator_id=f"med-{LANSHAN}001-tc-1",
            organisation_id=f"org-{LANSHAN}001-tc",
        ),
        AccountSpec(
            "centre.lanshan",
            "兰山区矛盾纠纷多元化解中心",
            Role.CENTER,
            (LANSHAN,),
            organisation_id=f"org-{LANSHAN}-centre",
        ),
        AccountSpec("bureau.lanshan", "兰山区司法局", Role.BUREAU, (LANSHAN,)),
        AccountSpec("bureau.linyi", "临沂市司法局", Role.BUREAU, everywhere),
        AccountSpec("admin", "系统管理员", Role.ADMIN, everywhere),
    ]
