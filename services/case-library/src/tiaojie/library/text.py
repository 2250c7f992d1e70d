"""Chinese text for search: jieba segmentation, stop words, and what two texts share.

Documents and queries go through the same `terms` function (jieba's search mode, which
adds the shorter words inside long ones, so 拖欠工资 also finds 工资), so the index and
the query always agree on what a term is.
"""

from __future__ import annotations

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
    其间 期间 当日 次日 今年 去年
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


def query_terms(text: str, *, limit: int = 64) -> list[tuple[str, int]]:
    """Distinct terms of a query with their counts, the most frequent first (bounded, so a
    long description stays a fast query)."""
    counts = Counter(terms(text))
    return counts.most_common(limit)


def joined(text_terms: list[str]) -> str:
    """Terms as the whitespace-separated text the index's tokenizer splits again."""
    return " ".join(text_terms)
