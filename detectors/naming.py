"""The checkpoint naming convention: a checker with verdicts, reasons and a suggestion.

The 2021 inspection found control points "named against the convention". The default
convention is ``<kind> <unit name> - <ward> - <province>`` in Vietnamese with diacritics,
in Unicode NFC, the ward and the province spelled as their official 2025 names:

    Chợ Xuân Hòa - Phường Xuân Hòa - Tỉnh Phú Thọ

The rule is a template (``NamingRule``) over four placeholders, ``{kind}``, ``{unit}``,
``{ward}`` and ``{province}``, joined by literal text, so a province may choose another
order or separator (``"{ward} / {kind} {unit}"``).

What is checked, each a named rule in the verdict:

* ``empty`` / ``placeholder``: no name, or a stand-in ("test", "Chốt 1", "N/A", "QR");
* ``too_long``: over ``max_length`` characters;
* ``unicode_nfc``: not in NFC (mixed composed and decomposed forms look alike on screen
  but compare unequal, so duplicates and searches miss);
* ``spacing``: repeated or stray whitespace;
* ``format``: the name does not follow the template;
* ``kind``: the leading word names another kind of place than the one registered;
* ``missing_diacritics``: the ward or province is written without its diacritics (or the
  whole name is plain ASCII);
* ``ward``: the ward named is not the ward of the registered code (a wrong pair is named,
  with the ward's real code when the named one exists);
* ``province``: the province named is not the ward's province;
* ``near_duplicate``: another checkpoint has the same name once case, diacritics,
  punctuation and spacing are normalised.

Old-style tone placement (``Hoà`` for ``Hòa``) is the same name, not a violation.
Pure and synchronous: the registry of other names is passed in.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from vietnam_provinces import Province, ProvinceCode, VietNamDivisionType, Ward, WardCode

__all__ = [
    "DEFAULT_RULE",
    "KIND_WORDS",
    "NamingError",
    "NamingRule",
    "NamingVerdict",
    "Violation",
    "check_name",
    "fold",
    "official_province_name",
]

DEFAULT_RULE = "{kind} {unit} - {ward} - {province}"
MAX_NAME_LENGTH = 200

#: The words that open a name, by registered kind (the first is the one suggested).
KIND_WORDS: Mapping[str, tuple[str, ...]] = {
    "office": ("Cơ quan", "Ủy ban nhân dân", "UBND", "Văn phòng", "Trụ sở"),
    "business": ("Công ty", "Doanh nghiệp", "Ngân hàng", "Chi nhánh"),
    "factory": ("Nhà máy", "Xí nghiệp", "Xưởng", "Khu công nghiệp"),
    "supermarket": ("Siêu thị", "Trung tâm thương mại"),
    "market": ("Chợ",),
    "shop": ("Cửa hàng", "Nhà thuốc", "Hiệu thuốc", "Tiệm"),
    "restaurant": ("Nhà hàng", "Quán"),
    "school": ("Trường", "Nhà trẻ"),
    "hospital": ("Bệnh viện", "Trạm y tế", "Trung tâm y tế", "Phòng khám"),
    "transport": ("Bến xe", "Ga", "Cảng", "Sân bay", "Chốt kiểm dịch"),
    "residential": ("Khu dân cư", "Tổ dân phố", "Chung cư", "Khu phố", "Thôn"),
    "other": ("Điểm",),
}

_PLACEHOLDER = re.compile(
    r"^(?:test\w*|thu|thu nghiem|demo|sample|example|abc\w*|xxx*|asdf\w*|qwe\w*|aaa+|"
    r"n ?a|none|null|nil|undefined|tbd|todo|unknown|chua (?:dat )?ten|khong (?:co )?ten|"
    r"ten|ten (?:diem|chot|dia diem)|(?:diem|chot|ma|noi) (?:kiem soat|quet|qr|khai bao)"
    r"(?: qr)?(?: \w{1,4})?|diem|chot|chot \w{1,4}|diem \w{1,4}|checkpoint(?: \w{1,4})?|"
    r"qr(?: code)?(?: \w{1,4})?|new|moi|\d*)$"
)

_OLD_TONES = {  # old-style tone placement -> the modern form (same name)
    "oà": "òa", "oá": "óa", "oả": "ỏa", "oã": "õa", "oạ": "ọa",
    "oè": "òe", "oé": "óe", "oẻ": "ỏe", "oẽ": "õe", "oẹ": "ọe",
    "uỳ": "ùy", "uý": "úy", "uỷ": "ủy", "uỹ": "ũy", "uỵ": "ụy",
}
_OLD_TONE_RE = re.compile("|".join(_OLD_TONES), re.IGNORECASE)


class NamingError(ValueError):
    """A naming rule that cannot be used (unknown or missing placeholders)."""


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str  # English
    message_vi: str


@dataclass(frozen=True)
class NamingVerdict:
    conforms: bool
    violations: tuple[Violation, ...]
    suggestion: str


def _modern_tones(text: str) -> str:
    def swap(m: re.Match[str]) -> str:
        new = _OLD_TONES[m.group(0).lower()]
        return new if m.group(0).islower() else new[0].upper() + new[1:]

    return _OLD_TONE_RE.sub(swap, text)


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_PUNCT = re.compile(r"[\s" + re.escape(string.punctuation) + r"–—·•]+")


def _same(a: str, b: str) -> bool:
    """Equal as Vietnamese names: NFC, case, spacing, tone placement."""
    return _canon(a) == _canon(b)


def _canon(text: str) -> str:
    return " ".join(_modern_tones(unicodedata.normalize("NFC", text)).casefold().split())


def fold(name: str) -> str:
    """The name as near-duplicates compare: no case, diacritics, punctuation or extra
    spacing (``"Chợ  Xuân-Hòa"`` and ``"cho xuan hoa"`` fold alike)."""
    return _PUNCT.sub(" ", _strip_marks(unicodedata.normalize("NFC", name)).casefold()).strip()


def official_province_name(province: Province) -> str:
    """``"Tỉnh Phú Thọ"``, ``"Thành phố Hà Nội"`` (the library leaves off "Tỉnh")."""
    if province.division_type == VietNamDivisionType.TINH and not province.name.startswith(
            "Tỉnh"):
        return f"Tỉnh {province.name}"
    return str(province.name)


@cache
def _province_by_fold() -> dict[str, Province]:
    out: dict[str, Province] = {}
    for p in Province.iter_all():
        out[fold(official_province_name(p))] = p
        out[fold(str(p.name))] = p
    return out


@cache
def _wards_by_fold(province_code: int) -> dict[str, list[Ward]]:
    out: dict[str, list[Ward]] = {}
    for w in Ward.iter_by_province(ProvinceCode(province_code)):
        out.setdefault(fold(str(w.name)), []).append(w)
    return out


def _ward_type_prefix(name: str) -> str:
    for prefix in ("Phường ", "Xã ", "Đặc khu "):
        if name.startswith(prefix):
            return prefix
    return ""


@dataclass(frozen=True)
class NamingRule:
    """A naming template over ``{kind}``, ``{unit}``, ``{ward}`` and ``{province}``."""

    template: str = DEFAULT_RULE
    max_length: int = MAX_NAME_LENGTH
    _parts: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts: list[tuple[str, str]] = []
        seen: set[str] = set()
        for literal, name, spec, conv in string.Formatter().parse(self.template):
            if spec or conv:
                raise NamingError(f"naming rule {self.template!r}: no format specs allowed")
            if literal:
                parts.append(("text", literal))
            if name is not None:
                if name not in {"kind", "unit", "ward", "province"}:
                    raise NamingError(
                        f"naming rule {self.template!r}: unknown placeholder {{{name}}}; "
                        "use {kind}, {unit}, {ward}, {province}")
                if name in seen:
                    raise NamingError(f"naming rule {self.template!r}: {{{name}}} twice")
                seen.add(name)
                parts.append(("field", name))
        missing = {"unit", "ward", "province"} - seen
        if missing:
            raise NamingError(f"naming rule {self.template!r}: needs "
                              + ", ".join(f"{{{m}}}" for m in sorted(missing)))
        if self.max_length < 10:
            raise NamingError(f"max_length must be at least 10, got {self.max_length}")
        object.__setattr__(self, "_parts", tuple(parts))

    def regex(self, kind_words: tuple[str, ...] | None) -> re.Pattern[str]:
        """The template as a pattern; ``kind_words=None`` lets ``{kind}`` be any word."""
        out = []
        for what, value in self._parts:
            if what == "text":
                out.append(re.escape(value).replace(r"\ ", r"\s+"))
            elif value == "kind":
                words = sorted(kind_words or (), key=len, reverse=True)
                alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
                out.append("(?P<kind>" + (alternatives or r"[^\s]+") + ")")
            else:  # the unit takes what is left, so it may hold the separator itself
                out.append(f"(?P<{value}>.+)" if value == "unit" else f"(?P<{value}>.+?)")
        return re.compile("^" + "".join(out) + "$", re.IGNORECASE)

    def render(self, *, kind: str, unit: str, ward: str, province: str) -> str:
        return self.template.format(kind=kind, unit=unit, ward=ward, province=province)

    @property
    def has_kind(self) -> bool:
        return any(v == "kind" for w, v in self._parts if w == "field")


def _v(rule: str, en: str, vi: str) -> Violation:
    return Violation(rule=rule, message=en, message_vi=vi)


def _all_kind_words() -> tuple[str, ...]:
    return tuple(w for words in KIND_WORDS.values() for w in words)


def _kind_of_word(word: str) -> str | None:
    for kind, words in KIND_WORDS.items():
        if any(fold(word) == fold(w) for w in words):
            return kind
    return None


def _registered_word(word: str) -> str:
    """The convention's spelling of a kind word (``"cho"`` -> ``"Chợ"``)."""
    return next(w for ws in KIND_WORDS.values() for w in ws if fold(w) == fold(word))


def _parse(rule: NamingRule, clean: str, kind: str) -> dict[str, str] | None:
    """The template's parts of ``clean`` (NFC, single-spaced), or ``None``.

    Matching runs on the text without diacritics (letter for letter), so a
    name written without them still parses and each part is judged on its own; the parts
    are cut from the original by position.
    """
    bare = "".join(b if len(b := _strip_marks(c)) == 1 else c for c in clean)
    stripped = tuple(_strip_marks(w) for w in _all_kind_words())
    match = rule.regex(stripped).match(bare) if rule.has_kind else rule.regex(()).match(bare)
    if match is None and kind == "other" and rule.has_kind:
        match = rule.regex(None).match(bare)
    if match is None:
        return None
    return {name: clean[match.start(name):match.end(name)].strip()
            for name in match.groupdict()}


def check_name(
    name: str,
    *,
    kind: str,
    ward_code: str,
    rule: NamingRule | None = None,
    others: Mapping[str, str] | None = None,
    checkpoint_id: str | None = None,
) -> NamingVerdict:
    """Judge ``name`` for a checkpoint of ``kind`` in ward ``ward_code`` (5 digits).

    ``others`` maps the ``fold`` of every other registered name to its checkpoint id (an
    entry for ``checkpoint_id`` itself is ignored). Raises ``KeyError`` for a ward code
    that is not official (the caller checks codes first, with a clearer error).
    """
    rule = rule or NamingRule()
    ward = Ward.from_code(WardCode(int(ward_code)))
    province = Province.from_code(ward.province_code)
    ward_name, province_name = str(ward.name), official_province_name(province)
    kind_word = KIND_WORDS.get(kind, KIND_WORDS["other"])[0]
    violations: list[Violation] = []
    unit: str | None = None

    nfc = unicodedata.normalize("NFC", name)
    clean = " ".join(nfc.split())
    folded = fold(clean)
    if not folded:
        violations.append(_v("empty", "the name is empty", "tên để trống"))
    elif _PLACEHOLDER.match(folded):
        violations.append(_v("placeholder", f"{name[:40]!r} is a placeholder, not a name",
                             f"{name[:40]!r} là tên tạm, không phải tên điểm"))
    if len(name) > rule.max_length:
        violations.append(_v("too_long", f"the name has {len(name)} characters; at most "
                             f"{rule.max_length}", f"tên dài {len(name)} ký tự; tối đa "
                             f"{rule.max_length}"))
    if nfc != name:
        violations.append(_v("unicode_nfc", "the name mixes Unicode forms (not NFC): "
                             "letters that look alike compare unequal",
                             "tên trộn lẫn các dạng Unicode (không phải NFC)"))
    if clean != nfc:
        violations.append(_v("spacing", "repeated or stray whitespace",
                             "thừa dấu cách"))

    if violations and violations[0].rule in {"empty", "placeholder"}:
        unit = None
    elif len(clean) <= rule.max_length * 2:  # beyond that, do not even try to parse
        parsed = _parse(rule, clean, kind)
        if parsed is None:
            example = rule.render(kind=kind_word, unit="…", ward=ward_name,
                                  province=province_name)
            violations.append(_v("format", f"does not follow {rule.template!r}, e.g. "
                                 f"{example!r}", f"không theo mẫu {rule.template!r}, ví dụ "
                                 f"{example!r}"))
            used, unit = _guess_unit(clean, ward_name, province_name)
            if used is not None and _kind_of_word(used) == kind:
                kind_word = _registered_word(used)
            if _strip_marks(clean) == clean and any(
                    fold(p) in fold(clean) for p in (_short_ward(ward_name), province_name)):
                violations.append(_v("missing_diacritics", "the name is written without "
                                     "diacritics", "tên viết không dấu"))
        else:
            unit = parsed["unit"]
            said = parsed.get("kind")
            if said is not None:
                said_kind = _kind_of_word(said)
                if kind != "other" and said_kind != kind:
                    violations.append(_v(
                        "kind", f"{said!r} names a {said_kind or 'different'} place; this "
                        f"checkpoint is registered as {kind} (e.g. {kind_word!r})",
                        f"{said!r} không khớp loại điểm đã đăng ký ({kind_word!r})"))
                else:
                    kind_word = _registered_word(said) if said_kind else said
                    if not _same(said, kind_word):
                        violations.append(_v(
                            "missing_diacritics", f"write {kind_word!r}, with its diacritics",
                            f"viết có dấu: {kind_word!r}"))
            violations += _check_ward(parsed["ward"], ward, province, ward_name)
            violations += _check_province(parsed["province"], province_name, ward_name)

    if others and folded:
        owner = others.get(folded)
        if owner is not None and owner != checkpoint_id:
            violations.append(_v("near_duplicate",
                                 f"the same name as checkpoint {owner!r} (ignoring case, "
                                 "diacritics and spacing)",
                                 f"trùng tên với điểm {owner!r}"))

    unit = unit if unit else _short_ward(ward_name)
    unit = _restore_diacritics(unit, ward_name)
    suggestion = _unique(rule, kind_word, unit, ward_name, province_name, others or {},
                         checkpoint_id)
    return NamingVerdict(conforms=not violations, violations=tuple(violations),
                         suggestion=suggestion)


def _check_ward(said: str, ward: Ward, province: Province, ward_name: str) -> list[Violation]:
    if _same(said, ward_name):
        return []
    if fold(said) == fold(ward_name):
        return [_v("missing_diacritics", f"write the ward as {ward_name!r}, with its "
                   "diacritics", f"viết tên phường/xã có dấu: {ward_name!r}")]
    short = ward_name[len(_ward_type_prefix(ward_name)):]
    if _same(said, short) or fold(said) == fold(short):
        return [_v("ward", f"write the ward's official name {ward_name!r}",
                   f"viết đúng tên chính thức {ward_name!r}")]
    named = _wards_by_fold(int(province.code)).get(fold(said), [])
    if named:
        other = named[0]
        return [_v("ward", f"the name says {said!r} (ward code {int(other.code):05d}) but the "
                   f"checkpoint's ward code {int(ward.code):05d} is {ward_name!r}",
                   f"tên ghi {said!r} (mã {int(other.code):05d}) nhưng mã phường/xã "
                   f"{int(ward.code):05d} là {ward_name!r}")]
    return [_v("ward", f"{said!r} is not the checkpoint's ward {ward_name!r}",
               f"{said!r} không phải phường/xã của điểm ({ward_name!r})")]


def _check_province(said: str, province_name: str, ward_name: str) -> list[Violation]:
    if _same(said, province_name):
        return []
    if fold(said) == fold(province_name):
        return [_v("missing_diacritics", f"write the province as {province_name!r}, with "
                   "its diacritics", f"viết tên tỉnh có dấu: {province_name!r}")]
    other = _province_by_fold().get(fold(said))
    if other is not None and official_province_name(other) == province_name:
        return [_v("province", f"write the province's official name {province_name!r}",
                   f"viết đúng tên chính thức {province_name!r}")]
    if other is not None:
        return [_v("province", f"{ward_name} is in {province_name}, not "
                   f"{official_province_name(other)}",
                   f"{ward_name} thuộc {province_name}, không thuộc "
                   f"{official_province_name(other)}")]
    return [_v("province", f"{said!r} is not a province since the 2025 reorganisation; "
               f"{ward_name} is in {province_name}",
               f"{said!r} không phải tên tỉnh/thành hiện hành; {ward_name} thuộc "
               f"{province_name}")]


def _short_ward(ward_name: str) -> str:
    return ward_name[len(_ward_type_prefix(ward_name)):] or ward_name


_MARKUP = re.compile(r"[<>{}\[\]\"`\\]+")


def _guess_unit(clean: str, ward_name: str, province_name: str) -> tuple[str | None, str | None]:
    """The kind word and the unit's name in a name that does not follow the rule: its
    segments without the ward, the province, markup or placeholders."""
    places = {fold(ward_name), fold(_short_ward(ward_name)), fold(province_name),
              fold(province_name.removeprefix("Tỉnh ").removeprefix("Thành phố "))}
    segments = [seg.strip() for seg in re.split(r"\s+[-–—|]\s+|\s*[,|]\s*",
                                                _MARKUP.sub(" ", clean))]
    kept = [seg for seg in segments if fold(seg) and fold(seg) not in places]
    used = None
    if kept:
        for word in sorted(_all_kind_words(), key=len, reverse=True):
            if fold(kept[0]).startswith(fold(word) + " "):
                used, kept[0] = kept[0][:len(word)], kept[0][len(word):].strip()
                break
    unit = " - ".join(" ".join(k.split()) for k in kept if fold(k))
    if not fold(unit) or _PLACEHOLDER.match(fold(unit)):
        return used, None
    return used, unit[:80]


def _restore_diacritics(unit: str, ward_name: str) -> str:
    """A unit written as the ward's short name without marks gets them back."""
    short = _short_ward(ward_name)
    return re.sub(re.escape(fold(short)), short, unit, flags=re.IGNORECASE) \
        if fold(unit) == fold(short) else unit


def _unique(rule: NamingRule, kind_word: str, unit: str, ward_name: str, province_name: str,
            others: Mapping[str, str], checkpoint_id: str | None) -> str:
    unit = " ".join(unicodedata.normalize("NFC", unit).split())
    base = rule.render(kind=kind_word, unit=unit, ward=ward_name, province=province_name)
    candidate, n = base, 2
    while (owner := others.get(fold(candidate))) is not None and owner != checkpoint_id:
        candidate = rule.render(kind=kind_word, unit=f"{unit} {n}", ward=ward_name,
                                province=province_name)
        n += 1
    return candidate
