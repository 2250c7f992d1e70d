"""Chinese text for search: jieba segmentation, stop words, and what two texts share.

Documents and queries go through the same `terms` function (jieba's search mode, which
adds the shorter words inside long ones, so 拖欠工资 also finds 工资), so the index and
the query always agree on what a term is.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

import jieba


# Function words and the vocabulary every mediation record shares (调解, 双方, 协议…):
# they would match every case and say nothing about similarity.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _words(
    """
    的 了 和 与 及 或 是 在 对 为 以 于 将 把 被 让 给 向 从 到 由 并
    而 其 之 该 此 这 那 有 无 没 没有 不 也 就 都 又 还 再 已 已经 曾
    会 能 可 可以 要 需 需要 应 应当 应该 但 但是 因 因为 所以 因此 如果
    虽然 并且 而且 以及 等 等等 我 你 他 她 它 我们 你们 他们 她们 自己 大家
    个 一 一个 一些 这个 那个 这些 那些 上 下 中 内 外 后 前 时 时候 多 少
    很 非常 比较 进行 经过 通过 根据 按照 关于 对于 由于 其中 之间 之后 之前
    以后 以前 当时 目前 现在 随后 然后 最终 最后 终于 同时 另外 此外 其他 其它
    有关 相关 方面 情况 问题 事情 一直 多次 再次 几次 表示 认为 称 说 提出
    要求 同意 双方 一方 对方 各方 当事人 当事 申请人 申请 被申请人 被申请 调解
    调解员 调解委员会 委员会 人民 纠纷 矛盾 案件 本案 该案 事宜 达成 协议
    调解协议 某 某某 甲 乙 丙 丁 元 年 月 日 号 万 万元 千 百 次 名 位 人
    家 户 天 后来 之下 过程 结果 工作 组织 开展 了解 发现 得知 经 经调解 在场
    其间 期间 当日 次日 今年 去年 过 好几 几个 一点 下来 起来 着 得 只 最 去 走 说 想 给 不给 想要
    天天 根本 一边 两个 几十 十个 一片 为了 还 他收 万多 三万 一批 好几回 几回 好几条 几条
    """
)
_KEEP = re.compile(r"^[\u4e00-\u9fa5a-zA-Z]+$")
_PLACEHOLDER = re.compile(r"\[[^\]]{1,12}\]")


@lru_cache(maxsize=1)
def ensure_jieba() -> bool:
    """Load jieba's dictionary once per process, with the domain's words added."""
    jieba.setLogLevel(60)
    jieba.initialize()
    for word in (
        "背对背",
        "面对面",
        "司法确认",
        "宅基地",
        "赡养费",
        "抚养费",
        "抚养权",
        "彩礼",
        "物业费",
        "误工费",
        "护理费",
        "经济补偿金",
        "包工头",
        "农民工",
        "土地承包",
        "医疗事故",
        "交通事故",
        "分期履行",
        "预付卡",
        "七天无理由",
        "冷处理",
        "调解员",
        "被申请人",
        "申请人",
        "和为贵",
        "过道",
        "鸡舍",
        "欠薪",
        "讨薪",
        "堵门",
        "漏水",
        "物业公司",
    ):
        jieba.add_word(word, freq=200000)
    return True


def terms(text: str) -> list[str]:
    """Search terms of a text, in order, repeated as often as they occur."""
    ensure_jieba()
    text = _PLACEHOLDER.sub(" ", text or "")
    out = []
    for token in jieba.lcut_for_search(text):
        token = token.strip().lower()
        if not token or token in STOP_WORDS or not _KEEP.match(token) or "某" in token:
            continue
        out.append(token)
    return out


# People describe a dispute in everyday words, records use the formal ones: a query term
# also looks for its formal counterparts (at a lower weight). Groups are symmetric.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("狗", "犬", "犬只"),
    ("林子", "山林", "林木", "林地"),
    ("砍树", "砍伐", "伐木"),
    ("医药费", "医疗费"),
    ("老房子", "老宅", "房屋"),
    ("工钱", "工资", "劳务报酬", "欠薪", "讨薪"),
    ("货", "货物", "货款"),
    ("借钱", "借款"),
    ("赔钱", "赔偿"),
    ("拆迁", "征收", "征迁"),
    ("吵架", "争吵", "口角"),
    ("打架", "互殴", "殴打", "打伤"),
    ("漏水", "渗水", "渗漏"),
    ("挡光", "采光", "遮挡"),
    ("吵", "噪音", "扰民"),
    ("睡不着", "失眠", "休息"),
    ("叫", "吠叫"),
    ("灯", "吊灯", "灯具"),
    ("饭店", "餐馆", "饭馆", "酒店"),
    ("装修队", "施工队", "装修公司"),
    ("厂", "工厂", "作坊", "企业"),
    ("脏水", "污水", "排污"),
    ("臭", "气味", "异味"),
    ("界石", "界桩", "地界", "界线"),
    ("网上", "网店", "网购"),
    ("健身卡", "预付卡", "会员卡", "储值卡"),
    ("轧伤", "砸伤", "受伤", "工伤"),
    ("电动车", "电动自行车"),
    ("孩子", "学生", "儿童", "子女"),
    ("儿女", "子女"),
    ("老人", "老年人"),
    ("房东", "出租人"),
    ("租客", "租户", "承租人"),
    ("押金", "保证金"),
    ("彩礼", "礼金"),
    ("辞退", "解除劳动合同", "开除"),
    ("合伙", "合伙人"),
    ("过道", "通道", "胡同"),
)
_SYNONYMS: dict[str, tuple[str, ...]] = {}
for _group in SYNONYM_GROUPS:
    for _word in _group:
        _SYNONYMS[_word] = tuple(
            dict.fromkeys(_SYNONYMS.get(_word, ()) + tuple(w for w in _group if w != _word))
        )
SYNONYM_WEIGHT = 0.6


def query_terms(text: str, *, limit: int = 64) -> list[tuple[str, float]]:
    """Distinct terms of a query with their weights (a repeated term counts more, but only
    logarithmically; formal synonyms of its terms count less), bounded so that a long
    description stays a fast query."""
    counts = Counter(terms(text)).most_common(limit)
    weights = {term: 1.0 + math.log(count) for term, count in counts}
    for term, _ in counts:
        for synonym in _SYNONYMS.get(term, ()):
            weights.setdefault(synonym, SYNONYM_WEIGHT)
    return list(weights.items())


def joined(text_terms: list[str]) -> str:
    """Terms as the whitespace-separated text the index's tokenizer splits again."""
    return " ".join(text_terms)
