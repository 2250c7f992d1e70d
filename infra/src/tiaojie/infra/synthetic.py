"""Synthetic but realistic data: valid ID numbers, mobiles, names and dispute texts.

Used by the demo, the benchmarks and the tests. Everything is generated: no real person.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from tiaojie.contracts.common import Category, Channel

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英玉兰红梅建华建国志强海燕凤兰淑珍德福振华立新"

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

# Short first-person accounts in the register people use at a desk or on the phone.
TEMPLATES: dict[Category, list[str]] = {
    Category.MARRIAGE_FAMILY: [
        "我和丈夫结婚十年，最近因为抚养费和孩子抚养权问题一直吵架，想请调解员帮忙协商离婚事宜。",
        "儿子儿媳不赡养年迈的父母，老人生活困难，希望村里调解赡养费的分担。",
    ],
    Category.NEIGHBOURHOOD: [
        "邻居在两家中间的过道堆放杂物，还加盖了围墙，影响我家通行和采光，多次沟通无果。",
        "楼上邻居家里漏水把我家天花板泡坏了，对方不肯赔偿维修费用。",
    ],
    Category.HOUSING_HOMESTEAD: [
        "我家宅基地和邻居家的宅基地界线有争议，对方翻建房屋时占了我家半米地。",
        "父亲去世后留下的老房子，兄弟姐妹之间对房屋继承分割有分歧。",
    ],
    Category.CONTRACT: [
        "我给对方供应了一批货物，签了买卖合同，对方收货后一直拖欠货款三万元不付。",
        "租房合同还没到期，房东突然要求我搬走，押金也不退。",
    ],
    Category.PRODUCTION_BUSINESS: [
        "我们几家合伙开的养殖场经营亏损，合伙人之间对分担债务有争议。",
        "承包的果园因为浇水用电问题和村里的另一户承包人发生纠纷。",
    ],
    Category.DAMAGES: [
        "对方家的狗咬伤了我的孩子，花了医药费两千多元，对方不愿意承担。",
        "在饭店吃饭时被掉落的灯具砸伤，要求饭店赔偿医疗费和误工费。",
    ],
    Category.LABOUR: [
        "我在建筑工地干了半年活，包工头拖欠工资两万八千元，一直不给结算。",
        "公司没签劳动合同就把我辞退了，要求支付经济补偿金。",
    ],
    Category.VILLAGE_AFFAIRS: [
        "村集体土地流转的收益分配不公开，村民对村委会的账目有意见。",
        "村里修路占用了我家的承包地，补偿款一直没有发放到位。",
    ],
    Category.FOREST_LAND: [
        "两个村民小组之间对山林的边界有争议，为了砍伐树木发生了冲突。",
        "承包地的边界被相邻承包户耕种侵占，双方对土地承包经营权有争议。",
    ],
    Category.LAND_EXPROPRIATION: [
        "村里搞拆迁，我家房屋的拆迁补偿标准比邻居低，要求按同一标准补偿安置。",
        "征地补偿款在家庭成员之间怎么分配有争议。",
    ],
    Category.ENVIRONMENT: [
        "村边的小作坊排放污水，气味很大，庄稼也受到污染，村民要求停产赔偿。",
        "附近工厂晚上机器噪音太大，影响居民休息，多次反映没有改善。",
    ],
    Category.ROAD_TRAFFIC: [
        "骑电动车和小轿车发生交通事故，交警已经认定责任，双方对赔偿金额谈不拢。",
        "货车倒车时撞坏了我家的大门和围墙，司机只愿意赔一部分。",
    ],
    Category.MEDICAL: [
        "母亲在医院做完手术后出现并发症，家属认为是医疗过错，要求医院赔偿。",
        "在诊所打针后孩子过敏住院，对医疗费用承担有争议。",
    ],
    Category.PROPERTY_MANAGEMENT: [
        "小区物业服务不到位，业主拒交物业费，物业公司起诉前希望调解。",
        "物业公司停放车辆收费不合理，业主委员会和物业发生争议。",
    ],
    Category.CONSUMER: [
        "在商场买的冰箱用了一个月就坏了，商家不给退换货。",
        "办了健身卡之后健身房关门跑路，要求退还剩余的预付卡费用。",
    ],
    Category.TOURISM: [
        "参加旅行社组织的旅游团，行程被擅自缩短，要求旅行社退还部分团费。",
        "景区门票和宣传不一致，游客要求景区赔偿。",
    ],
    Category.INTELLECTUAL_PROPERTY: [
        "我们公司的商标被隔壁店铺仿冒使用，要求对方停止侵权并赔偿损失。",
        "自己拍的照片被商家未经许可用于广告宣传，涉及著作权纠纷。",
    ],
    Category.ECOMMERCE: [
        "在网店买的农产品质量有问题，网店拒绝退款，平台处理不了。",
        "直播带货买的衣服和描述不符，卖家不同意七天无理由退货。",
    ],
    Category.FINANCE_INSURANCE: [
        "车辆出险后保险公司拒绝理赔，对保险条款理解有争议。",
        "借给朋友的五万元借款到期不还，对方承认借款但说没钱。",
    ],
    Category.CAMPUS_SAFETY: [
        "孩子在学校体育课上摔伤骨折，家长要求学校承担医疗费用。",
        "学生之间打闹造成一名学生牙齿受伤，双方家长和学校对赔偿有争议。",
    ],
    Category.OTHER: [
        "因为一些琐事和对方发生口角，希望有人帮忙说和一下。",
    ],
}


def id_number(rng: random.Random, county: str, *, born: date | None = None) -> str:
    """A valid 18-digit resident ID number for a county (synthetic)."""
    born = born or date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
    body = f"{county}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + _CHECK[total % 11]


def mobile(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(str(rng.randrange(10)) for _ in range(9))


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def submission(
    rng: random.Random,
    *,
    county: str,
    township: str | None,
    category: Category | None = None,
    channel: Channel = Channel.DESK,
) -> dict[str, Any]:
    """A realistic DisputeSubmission body (JSON-ready)."""
    category = category or rng.choice(list(TEMPLATES))
    text = rng.choice(TEMPLATES[category])

    def party() -> dict[str, Any]:
        return {"name": person_name(rng), "id_number": id_number(rng, county), "phone": mobile(rng)}

    return {
        "channel": str(channel),
        "county": county,
        "township": township,
        "category": str(category),
        "description": text,
        "applicants": [party()],
        "respondents": [party()],
        "amount": float(rng.choice((0, 800, 2000, 5000, 28000, 50000))) or None,
    }
