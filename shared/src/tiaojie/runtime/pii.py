"""Personal information (PIPL): validation, masking, encryption and keyed hashes.

ID-card numbers and phone numbers never leave a service in clear: they are stored
encrypted (AES-GCM) plus a keyed hash (HMAC-SHA256) for matching, shown masked, and
scrubbed from every log line and error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from datetime import date

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB/T 2260 province-level codes.
_PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)

# Loose patterns for scrubbing free text: an ID-like run of 17 digits plus digit/X
# (spaces allowed between groups), and mainland mobiles with optional +86 and separators.
_ID_RE = re.compile(r"(?<![0-9])(\d{6})[ -]?(\d{4})[ -]?(\d{4})[ -]?(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9])")


class PiiError(ValueError):
    """A personal-data value is invalid; the message never repeats the value."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code = code
        self.zh = zh
        self.en = en


def normalise_id_number(raw: str) -> str:
    """Validate an 18-digit resident ID (GB 11643) and return it with an upper-case X."""
    value = re.sub(r"[\s-]", "", raw).upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        raise PiiError("id_format", "身份证号码应为18位（最后一位可为X）", "ID number must be 18 characters")
    if value[:2] not in _PROVINCES:
        raise PiiError("id_region", "身份证号码的地区码无效", "ID number has an invalid region code")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise PiiError(
            "id_birth_date", "身份证号码中的出生日期不存在", "ID number has an impossible birth date"
        ) from None
    if born.year < 1900 or born > date.today():
        raise PiiError(
            "id_birth_date", "身份证号码中的出生日期不合理", "ID number has an implausible birth date"
        )
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17]:
        raise PiiError("id_checksum", "身份证号码校验位错误", "ID number check digit is wrong")
    return value


def id_birth_date(id_number: str) -> date:
    """Birth date encoded in a valid ID number."""
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def normalise_mobile(raw: str) -> str:
    """Validate a mainland mobile number (+86 and separators allowed) and return 11 digits."""
    value = re.sub(r"[\s()-]", "", raw)
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if not re.fullmatch(r"1[3-9]\d{9}", value):
        raise PiiError("phone_format", "手机号码格式不正确", "not a valid mainland mobile number")
    return value


def mask_id_number(value: str) -> str:
    """3701**********1234-style mask."""
    return value[:4] + "*" * (len(value) - 8) + value[-4:] if len(value) > 8 else "*" * len(value)


def mask_phone(value: str) -> str:
    """138****5678-style mask."""
    return value[:3] + "****" + value[-4:] if len(value) >= 11 else "*" * len(value)


def mask_name(value: str) -> str:
    """张*-style mask for a personal name."""
    return value[:1] + "*" * max(1, len(value) - 1) if value else value


def scrub(text: str) -> str:
    """Mask every ID-like and phone-like number in free text."""
    text = _ID_RE.sub(lambda m: m.group(1)[:4] + "*" * 10 + m.group(4)[-4:], text)
    return _PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


class Protector:
    """Encrypts personal data at rest and derives keyed hashes for matching."""

    def __init__(self, *, encryption_key: str, match_key: str) -> None:
        key = base64.b64decode(encryption_key)
        if len(key) not in (16, 24, 32):
            raise ValueError("encryption key must be 16, 24 or 32 bytes (base64)")
        self._aead = AESGCM(key)
        self._match_key = match_key.encode()

    def encrypt(self, value: str) -> str:
        """AES-GCM with a random nonce; output is base64(nonce || ciphertext)."""
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, value.encode(), None)).decode()

    def decrypt(self, token: str) -> str:
        raw = base64.b64decode(token)
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()

    def keyed_hash(self, value: str, *, purpose: str = "party") -> str:
        """HMAC-SHA256 of a normalised value: equal inputs match, the value stays hidden."""
        mac = hmac.new(self._match_key, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()
