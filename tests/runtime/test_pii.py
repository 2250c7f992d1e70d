"""Personal data: ID numbers (GB 11643), mobiles, masking, encryption, keyed hashes."""

from __future__ import annotations

import pytest

from tiaojie.runtime.pii import (
    PiiError,
    Protector,
    mask_id_number,
    mask_phone,
    normalise_id_number,
    normalise_mobile,
    scrub,
)
from tiaojie.runtime.settings import DEV_MATCH_KEY, DEV_PII_KEY

pytestmark = pytest.mark.unit

VALID = "371302198001011239"


def test_valid_id_number() -> None:
    assert normalise_id_number(VALID) == VALID
    assert normalise_id_number("371302 19800101 1239") == VALID


def test_x_check_digit_is_upper_cased() -> None:
    # 11010519491231002X is the standard's worked example
    assert normalise_id_number("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("371302198001011234", "id_checksum"),
        ("37130219800101123", "id_format"),
        ("991302198001011234", "id_region"),
        ("371302190102291230", "id_birth_date"),  # 29 February 1901: not a leap year
        ("371302199013011234", "id_birth_date"),
        ("371302290001011234", "id_birth_date"),  # born in the future
    ],
)
def test_invalid_id_numbers(value: str, code: str) -> None:
    with pytest.raises(PiiError) as err:
        normalise_id_number(value)
    assert err.value.code == code
    assert value not in str(err.value) and value not in err.value.zh


def test_leap_day_of_a_leap_year_is_fine() -> None:
    body = "37130220000229123"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    assert normalise_id_number(body + check) == body + check


@pytest.mark.parametrize("raw", ["13812345678", "+86 138-1234-5678", "0086 13812345678", "86 138 1234 5678"])
def test_mobiles(raw: str) -> None:
    assert normalise_mobile(raw) == "13812345678"


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "010-12345678", "abc"])
def test_bad_mobiles(raw: str) -> None:
    with pytest.raises(PiiError):
        normalise_mobile(raw)


def test_masks() -> None:
    assert mask_id_number(VALID) == "3713**********1239"
    assert mask_phone("13812345678") == "138****5678"


def test_scrub_masks_numbers_in_free_text() -> None:
    text = f"申请人身份证{VALID}，电话 +86 138-1234-5678，邮编276000"
    out = scrub(text)
    assert VALID not in out and "1234-5678" not in out
    assert "3713**********1239" in out and "138****5678" in out and "276000" in out


def test_encryption_round_trip_and_keyed_hash() -> None:
    p = Protector(encryption_key=DEV_PII_KEY, match_key=DEV_MATCH_KEY)
    token = p.encrypt(VALID)
    assert VALID not in token and p.decrypt(token) == VALID
    assert p.encrypt(VALID) != token  # random nonce
    assert p.keyed_hash(VALID) == p.keyed_hash(VALID)
    assert p.keyed_hash(VALID) != p.keyed_hash(VALID, purpose="phone")
    other = Protector(encryption_key=DEV_PII_KEY, match_key="another key")
    assert other.keyed_hash(VALID) != p.keyed_hash(VALID)
