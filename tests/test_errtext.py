"""The pages' words for `invalid` answers (hall/static/js/common.js errText):
the server's message mapped to zh-CN and English where it is known, and the
server's own words otherwise, never the one "invalid amount" text for all."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import ROOT

MESSAGES = [
    "password must be a string of 6 to 128 characters",
    "username: 2-32 letters, digits, _ . - or Chinese characters",
    "a bid must be a whole number of increments of 500",
    "increment must be between 1 and 1000000000000 fen",
    "amount must be from 1 to 5000000 fen",
    "stagger_s must be an integer from 0 to 86400",
    "the body: not valid JSON",
]


def words(lang: str) -> list[str]:
    script = f"""
globalThis.localStorage = {{ getItem: (k) => (k === "lang" ? {lang!r} : null), setItem() {{}} }};
const c = await import({json.dumps(str(ROOT / "hall/static/js/common.js"))});
console.log(JSON.stringify({json.dumps(MESSAGES)}.map((message) => c.errText({{ code: "invalid", message }}))));
"""
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_invalid_answers_in_the_pages_words():
    assert words("zh") == [
        "密码须为 6–128 个字符",
        "用户名须为 2–32 个字母、数字、_ . - 或汉字",
        "金额无效（须为加价幅度的整数倍）",
        "加价幅度须为大于 0 的金额",
        "金额超出允许范围",
        "逐件截拍间隔超出允许范围",
        "输入有误：the body: not valid JSON",
    ]
    en = words("en")
    assert en[0] == "Password: 6–128 characters"
    assert en[3] == "Increment must be an amount above 0"
    assert en[6] == "Invalid input: the body: not valid JSON"
