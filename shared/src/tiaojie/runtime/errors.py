"""Domain errors and their bilingual (Chinese and English) descriptions.

Services raise these from their rules; the HTTP layer turns them into 404/409/422 and
the consumer runtime into dead-letter reasons. No message ever repeats an input value,
so personal data cannot leak through an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    """One reason a field was refused."""

    field: str
    code: str
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message_zh": self.zh, "message_en": self.en}


class DomainError(Exception):
    """Base of errors a rule raises on purpose."""

    status = 400
    code = "error"

    def __init__(self, zh: str, en: str, **context: Any) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en
        self.context = context

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message_zh": self.zh, "message_en": self.en, **self.context}


class NotFound(DomainError):
    """Absent, or outside the caller's counties (indistinguishable on purpose)."""

    status = 404
    code = "not_found"

    def __init__(self, what_zh: str = "记录", what_en: str = "record") -> None:
        super().__init__(f"{what_zh}不存在", f"{what_en} not found")


class Conflict(DomainError):
    """The request is well-formed but contradicts the current state."""

    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    """A lifecycle transition not allowed from the current state."""

    code = "illegal_transition"

    def __init__(self, *, current: str, action: str, current_zh: str | None = None) -> None:
        super().__init__(
            f"当前状态为“{current_zh or current}”，不能执行“{action}”",
            f"cannot {action} while the case is {current}",
            current_state=current,
            action=action,
        )


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unavailable(DomainError):
    """A dependency the request needs is not configured or not reachable (503)."""

    status = 503
    code = "unavailable"


@dataclass
class Invalid(Exception):
    """One or more fields are invalid (422 on HTTP, a dead-letter reason on Kafka)."""

    errors: list[FieldError] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__("; ".join(f"{e.field}: {e.en}" for e in self.errors))

    def body(self) -> dict[str, Any]:
        return {
            "code": "validation_failed",
            "message_zh": "提交的数据有误，请按字段提示修改",
            "message_en": "the submitted data is invalid; see the reasons per field",
            "errors": [e.as_dict() for e in self.errors],
        }


# Chinese wording for pydantic's error types. The English side uses pydantic's own text
# (which, for the types below, never includes the input value).
_ZH: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为文本",
    "string_too_short": "不能为空或过短（至少{min_length}个字符）",
    "string_too_long": "过长（最多{max_length}个字符）",
    "string_pattern_mismatch": "格式不正确",
    "enum": "取值无效，可选值：{expected}",
    "literal_error": "取值无效，可选值：{expected}",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为是/否",
    "bool_parsing": "应为是/否",
    "greater_than_equal": "不能小于{ge}",
    "less_than_equal": "不能大于{le}",
    "greater_than": "必须大于{gt}",
    "less_than": "必须小于{lt}",
    "too_short": "至少需要{min_length}项",
    "too_long": "最多{max_length}项",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "datetime_type": "应为日期时间（ISO 8601）",
    "datetime_parsing": "应为日期时间（ISO 8601）",
    "datetime_from_date_parsing": "应为日期时间（ISO 8601）",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "请求体不是有效的 JSON",
    "value_error": "取值无效",
    "finite_number": "应为有限数字",
    "uuid_parsing": "应为 UUID",
    "url_parsing": "应为网址",
}


def _location(loc: Sequence[int | str], drop_prefix: Iterable[str] = ()) -> str:
    parts = [str(p) for p in loc]
    while parts and parts[0] in drop_prefix:
        parts.pop(0)
    return ".".join(parts) or "body"


def field_errors(
    exc: ValidationError | Sequence[dict[str, Any]], *, drop_prefix: Iterable[str] = ()
) -> list[FieldError]:
    """Bilingual per-field reasons of a pydantic validation error, without input values."""
    raw = exc.errors(include_input=False, include_url=False) if isinstance(exc, ValidationError) else exc
    drop = tuple(drop_prefix)
    out: list[FieldError] = []
    for err in raw:
        kind = str(err.get("type", "value_error"))
        ctx = {k: v for k, v in (err.get("ctx") or {}).items() if isinstance(v, str | int | float)}
        zh_template = _ZH.get(kind, "取值无效")
        try:
            zh = zh_template.format(**ctx)
        except (KeyError, IndexError):
            zh = _ZH.get(kind, "取值无效").split("（")[0].split("，")[0]
        en = str(err.get("msg", "invalid value"))
        custom = ctx.get("zh") if isinstance(ctx.get("zh"), str) else None
        if kind == "value_error" and "error" in (err.get("ctx") or {}):
            inner = err["ctx"]["error"]
            zh = getattr(inner, "zh", None) or zh
            en = getattr(inner, "en", None) or en.removeprefix("Value error, ")
            kind = getattr(inner, "code", None) or kind
        out.append(
            FieldError(
                field=_location(err.get("loc", ()), drop),
                code=kind,
                zh=str(custom or zh),
                en=en,
            )
        )
    return out


def reject_operator_keys(value: Any, path: str = "body") -> list[FieldError]:
    """Find object keys that a database would read as an operator or a path ('$x', 'a.b')."""
    found: list[FieldError] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}"
            if not isinstance(key, str) or key.startswith("$") or "." in key or "\x00" in key:
                found.append(
                    FieldError(
                        field=path,
                        code="forbidden_key",
                        zh="字段名不能以$开头或包含“.”",
                        en="keys must not start with '$' or contain '.'",
                    )
                )
            else:
                found.extend(reject_operator_keys(inner, where))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found.extend(reject_operator_keys(inner, f"{path}.{i}"))
    return found
