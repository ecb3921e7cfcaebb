"""The naming checker on real-looking names, including the seed's wards (Phường Xuân Hòa,
08749, and Phường Phúc Yên, 08740, both in Tỉnh Phú Thọ since 2025)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.naming import NamingError, NamingRule, check_name, fold

XH, PY = "08749", "08740"


@pytest.mark.parametrize(("name", "kind", "ward"), [
    ("Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ", "market", XH),
    ("Chợ Xuân Hoà - Phường Xuân Hoà - Tỉnh Phú Thọ", "market", XH),  # old tone placement
    ("Trường THCS Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ", "school", XH),
    ("UBND Phường Phúc Yên - Phường Phúc Yên - Tỉnh Phú Thọ", "office", PY),
    ("Bệnh viện Đa khoa Phúc Yên - Phường Phúc Yên - Tỉnh Phú Thọ", "hospital", PY),
    ("Siêu thị WinMart Phúc Yên - Phường Phúc Yên - Tỉnh Phú Thọ", "supermarket", PY),
    ("Chợ Xuân Hòa - Cổng A - Phường Xuân Hòa - Tỉnh Phú Thọ", "market", XH),
    ("Nhà văn hóa Đồng Xuân - Phường Xuân Hòa - Tỉnh Phú Thọ", "other", XH),
    ("Nhà máy Honda - Phường Phúc Yên - Tỉnh Phú Thọ", "factory", PY),
])
def test_conforming_names(name: str, kind: str, ward: str) -> None:
    verdict = check_name(name, kind=kind, ward_code=ward)
    assert verdict.conforms, verdict.violations
    assert verdict.violations == ()


@pytest.mark.parametrize(("name", "kind", "ward", "rules"), [
    ("", "market", XH, {"empty"}),
    ("test", "market", XH, {"placeholder"}),
    ("Chốt 1", "market", XH, {"placeholder"}),
    ("Điểm quét QR", "market", XH, {"placeholder"}),
    ("N/A", "shop", PY, {"placeholder"}),
    ("Cho Xuan Hoa - Phuong Xuan Hoa - Tinh Phu Tho", "market", XH, {"missing_diacritics"}),
    ("Chợ Xuân Hòa - Phuong Xuan Hoa - Tỉnh Phú Thọ", "market", XH, {"missing_diacritics"}),
    ("Chợ Xuân Hòa - Cổng A", "market", XH, {"format"}),
    ("UBND phường Xuân Hòa - Cổng chính", "office", XH, {"format"}),
    ("Chợ Xuân Hòa - Phường Phúc Yên - Tỉnh Phú Thọ", "market", XH, {"ward"}),
    ("Chợ Xuân Hòa - Xuân Hòa - Tỉnh Phú Thọ", "market", XH, {"ward"}),
    ("Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Vĩnh Phúc", "market", XH, {"province"}),
    ("Chợ Xuân Hòa - Phường Xuân Hòa - Thành phố Hà Nội", "market", XH, {"province"}),
    ("Chợ Xuân Hòa - Phường Xuân Hòa - Phú Thọ", "market", XH, {"province"}),
    ("Siêu thị Phúc Yên - Phường Phúc Yên - Tỉnh Phú Thọ", "market", PY, {"kind"}),
    ("Chợ  Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ", "market", XH, {"spacing"}),
    ("<script>alert(1)</script>", "shop", XH, {"format"}),
    ("x" * 10_000, "market", XH, {"placeholder", "too_long"}),
    (("Chợ Xuân Hòa " * 800).strip(), "market", XH, {"too_long"}),
])
def test_bad_names_name_each_rule(name: str, kind: str, ward: str, rules: set[str]) -> None:
    verdict = check_name(name, kind=kind, ward_code=ward)
    assert not verdict.conforms
    assert {v.rule for v in verdict.violations} == rules
    assert all(v.message and v.message_vi for v in verdict.violations)


def test_mixed_unicode_forms_are_caught() -> None:
    decomposed = unicodedata.normalize("NFD", "Chợ Xuân Hòa") + " - Phường Xuân Hòa - Tỉnh Phú Thọ"
    verdict = check_name(decomposed, kind="market", ward_code=XH)
    assert [v.rule for v in verdict.violations] == ["unicode_nfc"]
    assert unicodedata.is_normalized("NFC", verdict.suggestion)


def test_wrong_pair_names_the_real_code() -> None:
    verdict = check_name("Chợ Xuân Hòa - Phường Phúc Yên - Tỉnh Phú Thọ", kind="market",
                         ward_code=XH)
    (violation,) = verdict.violations
    assert "08740" in violation.message and "Phường Xuân Hòa" in violation.message
    assert verdict.suggestion == "Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ"


def test_near_duplicates_after_normalising_case_diacritics_and_spacing() -> None:
    taken = {fold("Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ"): "CP-1"}
    verdict = check_name("chợ xuân hoà  -  phường xuân hòa - tỉnh phú thọ", kind="market",
                         ward_code=XH, others=taken, checkpoint_id="CP-2")
    assert "near_duplicate" in {v.rule for v in verdict.violations}
    assert verdict.suggestion == "Chợ xuân hoà 2 - Phường Xuân Hòa - Tỉnh Phú Thọ"
    # A checkpoint is no duplicate of itself.
    again = check_name("Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ", kind="market",
                       ward_code=XH, others=taken, checkpoint_id="CP-1")
    assert again.conforms


@pytest.mark.parametrize("name", [
    "test", "Cho Xuan Hoa - Cong A", "Chợ Xuân Hòa - Phường Phúc Yên - Tỉnh Vĩnh Phúc",
    "<img src=x onerror=alert(1)>", "   ", "Siêu thị Phúc Yên", "x" * 10_000,
])
def test_the_suggestion_conforms(name: str) -> None:
    verdict = check_name(name, kind="market", ward_code=XH)
    assert check_name(verdict.suggestion, kind="market", ward_code=XH).conforms, \
        verdict.suggestion
    assert "<" not in verdict.suggestion


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["market", "shop", "other", "office"]))
def test_any_text_gets_a_verdict_and_a_conforming_suggestion(name: str, kind: str) -> None:
    verdict = check_name(name, kind=kind, ward_code=PY)
    again = check_name(verdict.suggestion, kind=kind, ward_code=PY)
    assert again.conforms, (name, verdict.suggestion, again.violations)


def test_the_rule_is_configurable() -> None:
    rule = NamingRule("{ward} / {kind} {unit} / {province}")
    name = "Phường Xuân Hòa / Chợ Xuân Hòa / Tỉnh Phú Thọ"
    assert check_name(name, kind="market", ward_code=XH, rule=rule).conforms
    verdict = check_name("Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ", kind="market",
                         ward_code=XH, rule=rule)
    assert [v.rule for v in verdict.violations] == ["format"]
    assert verdict.suggestion == name


@pytest.mark.parametrize("template", ["{kind} {unit}", "{unit} {ward} {province} {owner}",
                                      "{unit:>10} {ward} {province}", "{unit} {unit} {ward}"])
def test_bad_rules_fail_fast(template: str) -> None:
    with pytest.raises(NamingError):
        NamingRule(template)
