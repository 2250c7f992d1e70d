"""Anonymisation of a nominated case, and the check that refuses publication.

Everything the library stores has been through `Anonymiser.anonymise` first:
- personal names become 张某 (one person of that surname in the case) or 张某甲/张某乙
  (several), the same person getting the same pseudonym in every field; the parties'
  names (known from the nomination) are replaced first, then names found in the text by a
  surname list plus context (jieba part-of-speech tags, and role words such as 其子/申请人);
- organisations named as parties and companies (…有限公司) become 某公司 / 甲公司, 乙公司;
- ID numbers (spaces, dashes, a lower-case x), mobile phones (+86, dashes, spaces),
  landlines, bank accounts and any other long number, unified social credit codes,
  plate numbers, e-mail addresses and chat ids are removed;
- addresses keep the township: villages, compounds, roads and house numbers below it go.

`find_personal_data` is the checker: the same detectors, run over every free-text field
of an entry before publication (and on every edit); it names the field and the kind of
data found, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import jieba.posseg as pseg

from tiaojie.library.text import ensure_jieba

# The most frequent surnames (they cover the large majority of the population), then
# the compound ones. A name candidate must start with one of these.
SINGLE_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫"
    "孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅"
    "童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车"
    "项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛"
    "仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜"
    "海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜"
    "羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信"
    "展阴昝智幸奉植衡富尧闭由萧阎傅"
)
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
        "端木",
    ]
)
_SEQ = "甲乙丙丁戊己庚辛壬癸"
_ORG_SEQ = "甲乙丙丁戊己庚辛壬癸"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words jieba may tag as a person's name, or that look like surname + given name, but
# are ordinary words in mediation texts.
COMMON_NON_NAMES = _words(
    """
    申请人 申请 被申请人 当事人 调解员 调解 调解书 调解会 于是 于是乎 高兴 高度
    高空 文明 平安 方面 方式 方案 和解 和睦 和谐 和好 和气 和为贵 万元 万一
    石头 江边 黄色 白天 白色 金额 金钱 金牌 钱款 常年 常常 安全 安置 安排 安装
    安慰 向前 向来 向着 程序 程度 包括 包工头 包工 包干 王某 张某 李某 刘某
    陈某 杨某 明确 明显 明白 明天 明年 严重 严格 顾及 关于 关系 关心 关注 连续
    连带 任何 任意 武装 时间 时候 时常 公司 公平 公正 公道 公开 公安 公证 公路
    公共 公示 公告 公婆 宁愿 成功 成本 成立 成年 成员 解决 解释 解除 解约 田地
    田间 朱红 周围 周边 周末 周年 韩国 曾经 曾有 邓小平 毛泽东 毕业 双方 孙子
    孙女 孙辈 秦岭 卫生 全部 全体 全家 全村 全额 全面 齐全 司法 司机 司法所
    司法局 江苏 湖南 余额 余款 余下 林地 林木 林业 林场 付款 付清 付出 甘心
    左右 左侧 右侧 房屋 房东 房产 房租 房款 房间 景区 宫殿 管理 管道 车辆 车祸
    车库 简单 苗木 谷物 伍佰 夏天 夏季 冷静 冷处理 华人 信访 信任 信息 信用
    元旦 信誉 符合 路面 路口 路段 路过 国家 国土 国道 平台 平时 平方 平米 平均
    容易 来访 来电 来信 来往 戴帽 尤其 边界 边上 应当 应该 应急 原告 原则 原本
    原来 原因 原价 燕子 楚楚 梅雨 柏油 桑园 水利 党员 党支部 党委 宗族 师傅
    利息 利益 利润 龙头 史上 海边 海水 鲁南 楼上 楼下 楼道 盛情 乐意 甄别 项目
    连接 连同 苏醒 雷雨 焦急 展开 屈服 初步 门口 门面 宿舍 居民 居住 居委会
    居家 武力 和平 杜绝 贾某 谭某 侯某 康复 孔洞 庞大 查看 查明 查实 都是 强调
    强行 强制 姜某 宋某 熊孩子 牛棚 马上 马路 朱某 卢某 秦某 申诉 商量 商议
    商定 商家 商户 商场 商品 邱某 段落 段时间 沙发 沙子 荣誉 巫山 姚某 柯某
    殷切 祝贺 卓越 艾滋 焦虑 尚未 尚且 苏某 温和 温度 温暖 温馨 章程 单位 单元
    单独 单方 单价 单据 危害 危险 危房 邵某 费用 封闭 诸多 兰山 兰花 罗庄 河东
    沂南 沂水 郯城 兰陵 费县 平邑 莒南 蒙阴 临沭
    """
)
# Role words after which a surname starts a personal name (其子王小虎称…).
_ROLE_WORDS = (
    "申请人|被申请人|当事人|第三人|其子|其女|其妻|其夫|其父|其母|丈夫|妻子|儿子|女儿|儿媳|女婿|父亲|母亲|"
    "哥哥|弟弟|姐姐|妹妹|邻居|村民|居民|业主|司机|驾驶员|工人|员工|老人|患者|学生|家长|房东|租户|承租人|出租人|"
    "承包人|包工头|老板|经理|借款人|出借人|证人|户主|死者|伤者"
)
_NAME_AFTER = (
    "称说讲表示认为要求同意拒绝提出承认主张因系与和及、，,。；;：:"
    "的在于将把被向对找到从也则却当即随即遂不已一家夫妇等之"
)

_SURNAME_ALT = "|".join(sorted(COMPOUND_SURNAMES)) + "|[" + "".join(sorted(SINGLE_SURNAMES)) + "]"
_ROLE_NAME_RE = re.compile(
    rf"(?:{_ROLE_WORDS})[:：\s]?((?:{_SURNAME_ALT})[\u4e00-\u9fa5]{{1,2}}?)(?=[{_NAME_AFTER}])"
)
_PSEUDONYM_RE = re.compile(rf"^(?:{_SURNAME_ALT})某(?:某|[{_SEQ}])?$")

# -- numbers and codes ------------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_SEP = r"[ \u00a0\-－—]?"
# 18 characters of an ID (or a bank card) with optional separators between any of them.
_ID_RE = re.compile(rf"(?<![0-9A-Za-z])\d(?:{_SEP}\d){{16}}{_SEP}[0-9Xx×](?![0-9A-Za-z])")
_USCC_RE = re.compile(
    r"(?<![0-9A-Za-z])(?=[0-9A-Z]{0,17}[A-Z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Za-z])"
)
_MOBILE_RE = re.compile(rf"(?<![0-9])(?:[(（]?(?:\+|00)?86[)）]?{_SEP})?1[3-9]\d(?:{_SEP}\d){{8}}(?![0-9])")
_LANDLINE_RE = re.compile(r"(?<![0-9])(?:[(（]0\d{2,3}[)）]|0\d{2,3})[ \-－—]?[2-9]\d{6,7}(?![0-9])")
_LONG_NUMBER_RE = re.compile(rf"(?<![0-9A-Za-z.])\d(?:{_SEP}\d){{8,}}(?![0-9.])")
_PLATE_RE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]\s?[A-Za-z]\s?[·・•.\-]?\s?[A-HJ-NP-Za-hj-np-z0-9]{4}[A-HJ-NP-Za-hj-np-z0-9挂学警]{1,2}(?![A-Za-z0-9])"
)
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_CHAT_RE = re.compile(r"(微信号?|QQ号?|qq号?|抖音号|支付宝账?号?)([:：\s]*)([A-Za-z0-9_\-]{5,30})")

# -- addresses --------------------------------------------------------------------------
_NUMERAL = r"[0-9一二三四五六七八九十百零〇两]"
_HOUSE = rf"(?:{_NUMERAL}+(?:号楼|号院|栋|幢|单元|楼|层|室|组|号|排|户)[\-－]?)+(?:{_NUMERAL}+)?"
# A road name is a run of characters that are not function words, nor a township's end
# (so "兰山街道通达路88号" keeps 兰山街道).
_ROAD_NAME = r"(?:(?![和与及在住的是了到从向至于镇乡道])[\u4e00-\u9fa5]){1,8}?"
_ROAD_RE = re.compile(rf"{_ROAD_NAME}(?:路|街|大道|大街|巷|胡同)(?:{_NUMERAL}+(?:号|弄))+(?:{_HOUSE})?")
_HOUSE_RE = re.compile(
    rf"(?<![0-9])(?:{_NUMERAL}+(?:号楼|栋|幢|单元|室|组|号院))(?:{_HOUSE})?"
    rf"|(?<![0-9]){_NUMERAL}+号(?:楼|院)?{_HOUSE}"
)
_PLACE_SUFFIX = "村|社区|小区|花园|家园|公寓|新村|庄园"
_PLACE_AT_RE = re.compile(
    rf"(?=({_PLACE_SUFFIX})(?:村民|村委|村两委|村集体|居民|业主|委会|两委|党支部|[0-9一二三四五六七八九十]|"
    r"[的内里东西南北中口旁附与和及、，,。；;：:（）()\s]|$))"
)
# Characters that never belong to a village or compound name (function words, pronouns).
_PLACE_STOP = frozenset(
    "的了与和及在向对由被将把给从为是系经即同其该本住到去来回于之至往近邻全各外这那此每某个"
    "我你他她们两几、，,。；;：:（）() "
)
_TOWNSHIP_ENDS = ("街道", "镇", "乡")
_COMPANY_SUFFIX_RE = re.compile(r"有限责任公司|股份有限公司|有限公司|专业合作社")
_COMPANY_STOP = frozenset("的了与和及在向由被将把给从为是系经即同其该本到于之至、，,。；;：:“”\"' ")
_COMPANY_LEAD = ("对方单位", "用人单位", "申请人", "被申请人", "当事人", "对方", "单位", "经营的", "所在的")


def find_companies(text: str) -> list[str]:
    """Company names ending in 有限公司 and the like, walked back to where the name begins."""
    found: list[str] = []
    for m in _COMPANY_SUFFIX_RE.finditer(text):
        start = m.start()
        while start > 0 and m.start() - start < 20 and text[start - 1] not in _COMPANY_STOP:
            start -= 1
        name = text[start : m.end()]
        for lead in _COMPANY_LEAD:
            if name.startswith(lead) and len(name) - len(lead) > len(m.group(0)):
                name = name[len(lead) :]
        if len(name) - len(m.group(0)) >= 2 and not name.startswith(("某", "甲", "乙", "丙", "丁")):
            found.append(name)
    return found


@dataclass(frozen=True)
class Finding:
    """Personal data found in a field (the value itself is never kept)."""

    field: str
    kind: str

    @property
    def zh(self) -> str:
        return KIND_LABELS.get(self.kind, (self.kind, self.kind))[0]

    @property
    def en(self) -> str:
        return KIND_LABELS.get(self.kind, (self.kind, self.kind))[1]


KIND_LABELS: dict[str, tuple[str, str]] = {
    "id_number": ("身份证号码", "ID number"),
    "mobile": ("手机号码", "mobile phone number"),
    "landline": ("固定电话", "landline number"),
    "account": ("银行账号或其他长号码", "bank account or other long number"),
    "credit_code": ("统一社会信用代码", "unified social credit code"),
    "plate": ("车牌号码", "plate number"),
    "email": ("电子邮箱", "e-mail address"),
    "chat_id": ("微信/QQ等账号", "chat account id"),
    "address": ("详细地址（应只保留到乡镇街道）", "exact address (keep only the township)"),
    "name": ("姓名", "personal name"),
    "company": ("单位名称", "organisation name"),
}

PLACEHOLDERS: dict[str, str] = {
    "id_number": "[身份证号]",
    "mobile": "[电话]",
    "landline": "[电话]",
    "account": "[账号]",
    "credit_code": "[信用代码]",
    "plate": "[车牌号]",
    "email": "[邮箱]",
    "address": "[详细地址]",
}


def id_checksum_ok(digits: str) -> bool:
    """True if 18 characters carry a valid GB 11643 check digit."""
    value = digits.upper()
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def _compact(match: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", match).replace("×", "X")


# Ordered: an ID before the generic long number, a credit code before a plate, and so on.
_NUMBER_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", _EMAIL_RE),
    ("credit_code", _USCC_RE),
    ("id_number", _ID_RE),
    ("mobile", _MOBILE_RE),
    ("landline", _LANDLINE_RE),
    ("account", _LONG_NUMBER_RE),
    ("plate", _PLATE_RE),
)


def _numbers(text: str, on_found: Callable[[str], None]) -> str:
    for kind, pattern in _NUMBER_DETECTORS:

        def replace(m: re.Match[str], kind: str = kind) -> str:
            found = kind
            if kind == "id_number" and not id_checksum_ok(_compact(m.group(0))):
                found = "account"  # 18 digits without an ID's check digit: a card or account
            on_found(found)
            return PLACEHOLDERS[found]

        text = pattern.sub(replace, text)

    def chat(m: re.Match[str]) -> str:
        on_found("chat_id")
        return f"{m.group(1)}[账号]"

    return _CHAT_RE.sub(chat, text)


def _addresses(text: str, on_found: Callable[[str], None]) -> str:
    def road(m: re.Match[str]) -> str:
        on_found("address")
        return PLACEHOLDERS["address"]

    text = _ROAD_RE.sub(road, text)

    text = _places(text, on_found)
    return _HOUSE_RE.sub(road, text)


def _places(text: str, on_found: Callable[[str], None]) -> str:
    """Village and compound names become 某村/某小区; the township before them stays."""
    out: list[str] = []
    last = 0
    for m in _PLACE_AT_RE.finditer(text):
        at = m.start()
        if at < last + 2:
            continue
        start = at - 2
        name = text[start:at]
        if any(c in _PLACE_STOP or not "\u4e00" <= c <= "\u9fa5" for c in name) or name.endswith("某"):
            continue
        if name in ("城中", "新农", "行政", "自然", "老旧", "新建", "安置", "城市", "农村", "乡村", "村村"):
            continue
        if any(text[:at].endswith(t) for t in _TOWNSHIP_ENDS) or text[at - 1] in "村区":
            continue
        before = text[start - 1] if start >= 1 else ""
        if before and before not in _PLACE_STOP and not any(text[:start].endswith(t) for t in _TOWNSHIP_ENDS):
            two_back = text[start - 2] if start >= 2 else ""
            if (
                "\u4e00" <= before <= "\u9fa5"
                and start - 1 >= last
                and (not two_back or two_back in _PLACE_STOP)
            ):
                start -= 1  # three-character names after a pause (，小王庄村)
        out.append(text[last:start])
        out.append("某")
        last = at
        on_found("address")
    out.append(text[last:])
    return "".join(out)


def _surname_of(name: str) -> str:
    return name[:2] if name[:2] in COMPOUND_SURNAMES else name[:1]


def is_pseudonym(token: str) -> bool:
    return bool(_PSEUDONYM_RE.match(token))


def looks_like_name(token: str) -> bool:
    """A surname followed by one or two characters, not a known ordinary word."""
    if not 2 <= len(token) <= 4 or token in COMMON_NON_NAMES or is_pseudonym(token):
        return False
    if token[:2] in COMMON_NON_NAMES or token[-1] in "地的得了着过们":
        return False
    if not re.fullmatch(r"[\u4e00-\u9fa5]+", token):
        return False
    surname = _surname_of(token)
    if surname not in SINGLE_SURNAMES and surname not in COMPOUND_SURNAMES:
        return False
    given = token[len(surname) :]
    return 1 <= len(given) <= 2 and "某" not in given


_NAME_FLAGS = frozenset({"nr", "nrfg", "nrt"})
_SPLIT_GIVEN_FLAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nz", "ng", "zg"})
_NOT_SURNAME_FLAGS = frozenset({"p", "c", "d", "u", "ul", "uj", "uz", "uv", "ud", "ug", "r", "m", "q", "v"})


def _keep_only_deciding_tags() -> None:
    """Shrink jieba's word → part-of-speech table to the tags `detect_names` tests."""
    # A word left out is tagged "x", which, like the tags dropped (n, a, i, …), is in none
    # of the sets above: the names found are the same. The full table (349k words, a
    # string object per tag) is ~40 MB of the process; this keeps ~165k words, each tag
    # the sets' own string object.
    deciding = {flag: flag for flag in _NAME_FLAGS | _SPLIT_GIVEN_FLAGS | _NOT_SURNAME_FLAGS}
    table = pseg.dt.word_tag_tab
    pseg.dt.word_tag_tab = {word: deciding[tag] for word, tag in table.items() if tag in deciding}


_keep_only_deciding_tags()


def detect_names(text: str) -> list[str]:
    """Personal names in free text, in order of appearance (pseudonyms excluded)."""
    ensure_jieba()
    found: list[str] = []
    tokens = [(t.word, t.flag) for t in pseg.lcut(text)]
    for i, (word, flag) in enumerate(tokens):
        if flag in _NAME_FLAGS and looks_like_name(word):
            found.append(word)
        elif (
            len(word) == 1
            and word in SINGLE_SURNAMES
            and flag not in _NOT_SURNAME_FLAGS
            and i + 1 < len(tokens)
            and 1 <= len(tokens[i + 1][0]) <= 2
            and tokens[i + 1][1] in _SPLIT_GIVEN_FLAGS
            and looks_like_name(word + tokens[i + 1][0])
        ) or (
            word in COMPOUND_SURNAMES
            and i + 1 < len(tokens)
            and 1 <= len(tokens[i + 1][0]) <= 2
            and tokens[i + 1][1] not in _NOT_SURNAME_FLAGS
            and looks_like_name(word + tokens[i + 1][0])
        ):
            found.append(word + tokens[i + 1][0])
    for m in _ROLE_NAME_RE.finditer(text):
        if looks_like_name(m.group(1)):
            found.append(m.group(1))
    return list(dict.fromkeys(found))


@dataclass
class Pseudonyms:
    """Consistent pseudonyms within one case: 张某, or 张某甲/张某乙 when several share a
    surname; organisations become 某公司, or 甲公司/乙公司 when there are several."""

    persons: list[str] = field(default_factory=list)
    organisations: list[str] = field(default_factory=list)

    def add_person(self, name: str) -> None:
        if name and name not in self.persons:
            self.persons.append(name)

    def add_organisation(self, name: str) -> None:
        if name and name not in self.organisations:
            self.organisations.append(name)

    def mapping(self) -> dict[str, str]:
        by_surname: dict[str, list[str]] = {}
        for name in self.persons:
            by_surname.setdefault(_surname_of(name), []).append(name)
        out: dict[str, str] = {}
        for surname, names in by_surname.items():
            if len(names) == 1:
                out[names[0]] = f"{surname}某"
            else:
                for i, name in enumerate(names):
                    out[name] = f"{surname}某{_SEQ[i % len(_SEQ)]}" + ("" if i < len(_SEQ) else str(i))
        by_kind: dict[str, list[str]] = {}
        for name in self.organisations:
            by_kind.setdefault(_organisation_kind(name), []).append(name)
        for kind, names in by_kind.items():
            if len(names) == 1:
                out[names[0]] = f"某{kind}"
            else:
                for i, name in enumerate(names):
                    out[name] = f"{_ORG_SEQ[i % len(_ORG_SEQ)]}{kind}"
        return out


def _organisation_kind(name: str) -> str:
    for suffix in (
        "医院",
        "学校",
        "幼儿园",
        "银行",
        "合作社",
        "物业",
        "旅行社",
        "酒店",
        "饭店",
        "超市",
        "工厂",
        "厂",
        "店",
    ):
        if name.endswith(suffix) or (suffix == "物业" and "物业" in name):
            return "物业公司" if suffix == "物业" else suffix
    return "公司"


@dataclass(frozen=True)
class Party:
    name: str
    role: str = ""
    kind: str = "person"  # person | organisation


def parties_of(raw: Iterable[Mapping[str, str]]) -> list[Party]:
    """Parties as NominatedContent carries them ({"role", "name", optional "kind"})."""
    out = []
    for p in raw:
        name = (p.get("name") or "").strip()
        if not name:
            continue
        kind = p.get("kind") or ("organisation" if _looks_like_organisation(name) else "person")
        out.append(Party(name=name, role=p.get("role", ""), kind=kind))
    return out


def _looks_like_organisation(name: str) -> bool:
    return len(name) > 4 or any(
        s in name for s in ("公司", "医院", "学校", "银行", "合作社", "厂", "店", "村委会")
    )


@dataclass
class Anonymised:
    """The texts after anonymisation, what was replaced (kinds and counts only)."""

    fields: dict[str, str]
    replaced: dict[str, int]


class Anonymiser:
    """Anonymises the free-text fields of one case consistently."""

    def anonymise(self, fields: Mapping[str, str], *, parties: Iterable[Party] = ()) -> Anonymised:
        """Numbers and addresses first (so digits never look like names), then names."""
        counts: dict[str, int] = {}

        def found(kind: str) -> None:
            counts[kind] = counts.get(kind, 0) + 1

        texts = {k: _addresses(_numbers(v or "", found), found) for k, v in fields.items()}
        pseudonyms = Pseudonyms()
        for party in parties:
            if party.kind == "organisation":
                pseudonyms.add_organisation(party.name)
            else:
                pseudonyms.add_person(party.name)
        for text in texts.values():
            for company in find_companies(text):
                pseudonyms.add_organisation(company)
        # Known names first, so detection below never sees them; then names in the text.
        known = pseudonyms.mapping()
        texts = {k: _replace_all(v, known, found) for k, v in texts.items()}
        for text in texts.values():
            for name in detect_names(text):
                pseudonyms.add_person(name)
        mapping = pseudonyms.mapping()
        # A party's given name alone (建国表示…) refers to the same person.
        for party in parties:
            if party.kind == "person" and len(party.name) >= 3:
                given = party.name[len(_surname_of(party.name)) :]
                if len(given) >= 2 and given not in COMMON_NON_NAMES:
                    mapping.setdefault(given, mapping[party.name])
        texts = {k: _replace_all(v, mapping, found) for k, v in texts.items()}
        return Anonymised(fields=texts, replaced=counts)


def _replace_all(text: str, mapping: Mapping[str, str], on_found: Callable[[str], None]) -> str:
    if not mapping:
        return text
    names = sorted((n for n in mapping if n and mapping[n] != n), key=len, reverse=True)
    if not names:
        return text
    pattern = re.compile("|".join(re.escape(n) for n in names))

    def replace(m: re.Match[str]) -> str:
        on_found("name")
        return mapping[m.group(0)]

    return pattern.sub(replace, text)


def find_personal_data(
    fields: Mapping[str, str], *, known_name: Callable[[str], bool] | None = None
) -> list[Finding]:
    """Every field that still holds personal data, and what kind (at most one per kind)."""
    findings: list[Finding] = []
    for name, text in fields.items():
        if not text:
            continue
        kinds: list[str] = []

        def seen(kind: str, kinds: list[str] = kinds) -> None:
            if kind not in kinds:
                kinds.append(kind)

        rest = _addresses(_numbers(text, seen), seen)
        if find_companies(rest):
            seen("company")
        if detect_names(rest) or (known_name is not None and _has_known_name(rest, known_name)):
            seen("name")
        findings.extend(Finding(field=name, kind=k) for k in kinds)
    return findings


def _has_known_name(text: str, known_name: Callable[[str], bool]) -> bool:
    """True if a run of 2-4 Chinese characters is one of the case's names (any surname: the
    fingerprints, not the surname list, decide)."""
    for i in range(len(text) - 1):
        for length in (2, 3, 4):
            candidate = text[i : i + length]
            if (
                len(candidate) == length
                and "某" not in candidate
                and all("\u4e00" <= c <= "\u9fa5" for c in candidate)
                and known_name(candidate)
            ):
                return True
    return False


def name_fingerprints(parties: Iterable[Party], keyed_hash: Callable[[str], str]) -> list[str]:
    """Keyed hashes of the parties' names (full and given), so the checker can recognise a
    real name an editor types back in without the library keeping any name."""
    out: set[str] = set()
    for party in parties:
        if party.kind != "person":
            continue
        out.add(keyed_hash(party.name))
    return sorted(out)
