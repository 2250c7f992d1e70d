"""Log lines never carry ID or phone numbers in clear."""

from __future__ import annotations

import json
import logging

import pytest

from tiaojie.runtime.logging import configure_logging, get_logger

pytestmark = pytest.mark.unit


def test_structured_and_stdlib_logs_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="test", level="INFO", json=True)
    get_logger("t").info("registered", detail="身份证371302198001011239 电话13812345678")
    logging.getLogger("uvicorn.error").warning("caller 13812345678 failed")
    out = capsys.readouterr().out
    assert "371302198001011239" not in out and "13812345678" not in out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(line.get("service") == "test" for line in lines)
    assert "138****5678" in out
