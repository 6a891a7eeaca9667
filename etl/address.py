"""Read an address against the grid, level by level (地址解析): never a wrong village.

Letters, phone calls and many online petitions come with no coordinates, only a line
such as ``广州市番禺区沙湾街道沙南村民委员会大街51号``. :class:`AddressParser` reads such a
line the way a clerk does:

1. **Normalise**: full-width characters to half-width (NFKC), spaces removed, punctuation
   turned into a separator, a leading ``广东省`` / ``广州市`` dropped.
2. **Find every name** of every unit of the grid in the text at once (Aho–Corasick, the
   ``ahocorasick-rs`` library): official names and their usual forms — districts with
   and without 区 (the bare form only at the start of a part of the text) and their
   former names (东山区, 芳村区, 萝岗区, 番禺市 …); streets as 街道 / 街 / 街道办(事处),
   towns as 镇; communities as 社区居民委员会 / 社区居委会 / 居民委员会 / 居委会 / 社区,
   villages as 村民委员会 / 村委会 / 村 (names that already end in 村 or 社区 keep it) —
   plus the aliases of a user's alias file (:func:`read_aliases`).
3. **Read in order**: a district, then a street or town *inside that district* after it,
   then a village or community *inside that street* after that. Each matched name is
   consumed, so a later level is never matched inside an earlier one (沙湾 in 沙湾街道 is
   the street, not 沙湾社区). Where two readings are possible (``番禺市桥街道`` = 番禺 +
   市桥街道, not 番禺市 + 桥街道) the one that places the case deeper wins.
4. **Never guess a village.** A village is chosen only when the text names it inside the
   named street, or inside the named district when no street is named and the name is
   unique there. Otherwise the case stays at the finest level the text determines, with
   the reason (:data:`NOTES`: 村居名称不唯一, 村居与镇街不符, 未识别村居 …) and the candidate
   units kept for an office to choose from.

A district or street known from a code column (问题属地代码, 区代码 …) anchors the reading
the same way a name in the text would.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ahocorasick_rs
import pandas as pd

from geo.errors import SourceError

NOTES: dict[str, str] = {
    "village_ambiguous": "村居名称不唯一",
    "village_street_conflict": "村居与镇街不符",
    "village_district_conflict": "村居与区不符",
    "village_unknown": "未识别村居",
    "village_unanchored": "未指明区或镇街，无法确定村居",
    "street_ambiguous": "镇街名称不唯一",
    "street_district_conflict": "镇街与区不符",
    "street_unknown": "未识别镇街",
    "nothing": "地址中未识别区、镇街或村居",
}
"""Why an address left a case above village level (stored in ``cases.attach_note``)."""

FORMER_DISTRICT_NAMES: dict[str, str] = {
    "东山区": "440104000000",  # merged into 越秀区 in 2005
    "芳村区": "440103000000",  # merged into 荔湾区 in 2005
    "萝岗区": "440112000000",  # merged into 黄埔区 in 2014
    "番禺市": "440113000000",  # county-level city until it became 番禺区 in 2000
    "花都市": "440114000000",  # likewise, 花都区 since 2000
    "从化市": "440117000000",  # 从化区 since 2014
    "增城市": "440118000000",  # 增城区 since 2014
}
"""Former district-level names still written in addresses (广州市行政区划沿革, public record)."""

HOW_ZH = {"official": "全称", "short": "简称", "former": "旧称", "alias": "别名", "code": "代码"}
LEVEL_ZH = {"district": "区", "street": "镇街", "village": "村居"}
_ORDER = ("district", "street", "village")
_PREFIXES = ("中华人民共和国", "中国", "广东省", "广东", "广州市", "广州")
_LEADING = re.compile("^(?:(?:" + "|".join(_PREFIXES) + r")\|?)+")
_SEPARATORS = re.compile(r"[\s\u3000,，.。;；:：、/\\|()（）\[\]【】<>《》\"'“”‘’!！?？#＃\-—_~]+")
_URBAN_SUFFIXES = ("社区居民委员会", "社区居委会会", "社区居委会", "居民委员会", "居委会会", "居委会")
_RURAL_SUFFIXES = ("村民委员会", "村委会", "委员会")
_ALIAS_HEADERS = {"alias": ("alias", "别名", "地名", "名称"), "code": ("code", "区划代码", "代码",
                                                                  "统计用区划代码")}
SEP = "|"


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """What an address says about where a case lies.

    Attributes
    ----------
    district, street, village
        Codes of the units the text determines (None where it does not).
    note
        Why the case is not placed finer (a :data:`NOTES` value), or None.
    candidates
        Codes the text could mean at the level it could not settle.
    parts
        Which parts matched and how, for people: ``区「番禺区」全称；镇街「沙湾街道」全称；…``.
    """

    district: str | None = None
    street: str | None = None
    village: str | None = None
    note: str | None = None
    candidates: tuple[str, ...] = ()
    parts: str | None = None

    @property
    def code(self) -> str | None:
        """The code of the finest unit determined."""
        return self.village or self.street or self.district

    @property
    def level(self) -> str | None:
        """village, street, district or None."""
        if self.village:
            return "village"
        if self.street:
            return "street"
        return "district" if self.district else None

    @property
    def depth(self) -> int:
        """3 for a village, 2 for a street, 1 for a district, 0 for nothing."""
        return (self.village is not None) + (self.street is not None) + (self.district is not None)


@dataclass(slots=True)
class _Reading:
    """A reading in progress: codes, note, candidates, and the parts as (level, hit, code)."""

    district: str | None
    street: str | None
    village: str | None
    note: str | None
    candidates: tuple[str, ...]
    parts: list[tuple]

    @property
    def depth(self) -> int:
        return (self.village is not None) + (self.street is not None) + (self.district is not None)

    def match(self, parser: AddressParser) -> AddressMatch:
        """The finished :class:`AddressMatch` (parts written out for people)."""
        text = "；".join(parser.part(level, hit, code) for level, hit, code in self.parts)
        return AddressMatch(self.district, self.street, self.village, self.note,
                            self.candidates, text or None)


@dataclass(frozen=True, slots=True)
class _Entry:
    level: str
    codes: tuple[str, ...]
    how: dict[str, str]  # code → official/short/former/alias
    bare: bool  # a bare district name: only at the start of a part of the text


@dataclass(slots=True)  # not frozen: built a few times per address, frozen init is slower
class _Hit:
    start: int
    end: int
    text: str
    entry: _Entry


class AddressParser:
    """The grid's names and their forms, and the rule that reads an address against them.

    Parameters
    ----------
    units
        Current units: ``code``, ``name``, ``level``, ``parent_code`` (columns or index
        ``code``).
    aliases
        Extra names: ``alias``, ``code`` (see :func:`read_aliases`).
    """

    def __init__(self, units: pd.DataFrame, *, aliases: pd.DataFrame | None = None) -> None:
        frame = units.reset_index() if "code" not in units.columns else units
        frame = frame[frame["level"].isin(_ORDER)]
        self.name = dict(zip(frame["code"], frame["name"], strict=True))
        self.level = dict(zip(frame["code"], frame["level"], strict=True))
        self.parent = dict(zip(frame["code"], frame["parent_code"], strict=True))
        forms: dict[tuple[str, str], dict[str, str]] = {}  # (text, level) → code → how
        bare: set[tuple[str, str]] = set()
        for code, name, level in zip(frame["code"], frame["name"], frame["level"], strict=True):
            parent_name = self.name.get(self.parent.get(code), "")
            for text, how in name_forms(str(name), level, parent_name=str(parent_name)):
                forms.setdefault((text, level), {}).setdefault(code, how)
                if level == "district" and how == "short":
                    bare.add((text, level))
        for text, code in FORMER_DISTRICT_NAMES.items():
            if code in self.level:
                forms.setdefault((text, "district"), {}).setdefault(code, "former")
        if aliases is not None:
            for text, code in zip(aliases["alias"], aliases["code"], strict=True):
                level = self.level.get(code)
                if level is not None:
                    key = (normalise(str(text)), level)
                    forms.setdefault(key, {})[code] = "alias"
                    bare.discard(key)
        entries: dict[str, list[_Entry]] = {}
        for (text, level), how in forms.items():
            entries.setdefault(text, []).append(
                _Entry(level, tuple(sorted(how)), how, (text, level) in bare))
        self._patterns = list(entries)
        self._entries = [entries[p] for p in self._patterns]
        self._automaton = ahocorasick_rs.AhoCorasick(self._patterns)
        self._parts: dict[tuple, str] = {}

    # -- public ------------------------------------------------------------------------

    def parse(self, text: str | None, *, district: str | None = None,
              street: str | None = None) -> AddressMatch:
        """Read one address; ``district``/``street`` are codes already known (from a code).

        Returns
        -------
        AddressMatch
            The units the text determines, and why it stops where it stops.
        """
        if street is not None and district is None:
            district = self.parent.get(street)
        norm = normalise(text or "")
        by_level = self._hits(norm)
        best: _Reading | None = None
        for option in self._district_options(by_level["district"], district):
            result = self._from_district(option, by_level, street=street)
            if best is None or result.depth > best.depth:
                best = result
            if best.village is not None:
                break
        return best.match(self) if best is not None else AddressMatch(note=NOTES["nothing"])

    def parse_many(self, texts: Sequence[str | None], districts: Sequence[str | None],
                   streets: Sequence[str | None]) -> list[AddressMatch]:
        """Read many addresses; each distinct (text, district, street) is read once."""
        keys = list(zip(texts, districts, streets, strict=True))
        done = {key: self.parse(key[0], district=key[1], street=key[2]) for key in set(keys)}
        return [done[key] for key in keys]

    def part(self, level: str, hit: _Hit | None, code: str) -> str:
        """How one part matched, for people (cached: the same forms recur)."""
        key = (level, None if hit is None else hit.text, code)
        text = self._parts.get(key)
        if text is None:
            text = self._parts[key] = _part(level, hit, code, self)
        return text

    def describe(self, codes: Iterable[str]) -> str:
        """``code 名称; code 名称`` for a list of units (the candidates column)."""
        return "; ".join(f"{c} {self.name.get(c, '')}".strip() for c in codes)

    # -- the reading ---------------------------------------------------------------------

    def _hits(self, norm: str) -> dict[str, list[_Hit]]:
        """Every name in the text, per level, leftmost first and the longest first at a start.

        A bare district name (番禺) counts only at the start of a part of the text.
        """
        by_level: dict[str, list[_Hit]] = {"district": [], "street": [], "village": []}
        found = sorted((start, -end, index) for index, start, end
                       in self._automaton.find_matches_as_indexes(norm, overlapping=True))
        starts = None
        for start, neg_end, index in found:
            text = self._patterns[index]
            for entry in self._entries[index]:
                if entry.bare:
                    starts = _segment_starts(norm) if starts is None else starts
                    if start not in starts:
                        continue
                by_level[entry.level].append(_Hit(start, -neg_end, text, entry))
        return by_level

    def _district_options(self, hits: list[_Hit], known: str | None) -> list[tuple]:
        """(code, end of its name in the text, part description) for each reading."""
        if known is not None:
            named = [h for h in hits if known in h.entry.codes]
            if named:
                return [(known, named[0].end, ("district", named[0], known))]
            return [(known, 0, ("district", None, known))]
        options = [(code, h.end, ("district", h, code)) for h in hits for code in h.entry.codes]
        if all(h.entry.bare for h in hits):  # a bare 番禺/白云 may be a road's name: try without
            options.append((None, 0, None))
        return options

    def _from_district(self, option: tuple, by_level: dict[str, list[_Hit]], *,
                       street: str | None) -> _Reading:
        """The deepest reading below one district reading (or a street known from a code)."""
        district, pos, district_part = option
        parts = [district_part] if district_part else []
        if street is not None:
            hit = next((h for h in by_level["street"] if street in h.entry.codes
                        and h.start >= pos), None)
            parts.append(("street", hit, street))
            if hit is not None:
                pos = hit.end
            return self._village(district, street, pos, by_level["village"], parts)
        best: _Reading | None = None
        note, candidates = None, ()
        streets_read: list[_Hit] = []
        for hit in by_level["street"]:
            if hit.start < pos:
                continue
            streets_read.append(hit)
            inside = [c for c in hit.entry.codes if district is None or self.parent.get(c) == district]
            if len(inside) == 1:
                code = inside[0]
                end = max(h.end for h in by_level["street"]
                          if h.start == hit.start and code in h.entry.codes)
                found = self._village(self.parent.get(code), code, end, by_level["village"],
                                      [*parts, ("street", hit, code)])
                if best is None or found.depth > best.depth:
                    best = found
                if best.village is not None:
                    return best
            elif note is None:
                note = NOTES["street_ambiguous" if inside else "street_district_conflict"]
                candidates = tuple(inside or hit.entry.codes)
        if district is not None:
            # no street read: a village unique in the district (its name may hold the street's,
            # as 梯面镇居民委员会 does: then it must be that street's)
            found = self._village(district, None, pos, by_level["village"], parts)
            if found.village is not None and _holds_streets(found, streets_read):
                return found
            if best is not None:
                return best
            if found.village is None and note is None:
                return found
            return _Reading(district, None, None, note, candidates, parts)
        if best is not None:
            return best
        found = self._village(None, None, pos, by_level["village"], parts)
        if note is not None and found.depth == 0:
            return _Reading(None, None, None, note, candidates, parts)
        return found

    def _village(self, district: str | None, street: str | None, pos: int,
                 hits: list[_Hit], parts: list[tuple]) -> _Reading:
        """The village named after ``pos`` inside ``street`` (else ``district``)."""
        chosen = _leftmost_longest([h for h in hits if h.start >= pos])
        note, candidates = None, ()
        for hit in chosen:
            if street is not None:
                inside = [c for c in hit.entry.codes if self.parent.get(c) == street]
                conflict = "village_street_conflict"
            elif district is not None:
                inside = [c for c in hit.entry.codes
                          if self.parent.get(self.parent.get(c)) == district]
                conflict = "village_district_conflict"
            else:
                inside, conflict = list(hit.entry.codes), "village_unanchored"
                if note is None:
                    note, candidates = NOTES[conflict], tuple(inside)
                continue
            if len(inside) == 1:
                code = inside[0]
                street_code = street or self.parent.get(code)
                return _Reading(district or self.parent.get(street_code), street_code, code,
                                None, (), [*parts, ("village", hit, code)])
            if note is None:
                note = NOTES["village_ambiguous" if inside else conflict]
                candidates = tuple(inside or hit.entry.codes)
        if note is None:
            note = NOTES["village_unknown"] if street or district else NOTES["nothing"]
            if street is None and district is not None:
                note = NOTES["street_unknown"]
        return _Reading(district, street, None, note, candidates, parts)


# -- names and their forms -------------------------------------------------------------------


def normalise(text: str) -> str:
    """Full-width → half-width, no spaces, punctuation → ``|``, leading 省/市 names dropped."""
    text = unicodedata.normalize("NFKC", text)
    text = _SEPARATORS.sub(SEP, text).strip(SEP)
    return _LEADING.sub("", text)


def name_forms(name: str, level: str, *, parent_name: str = "") -> list[tuple[str, str]]:
    """The official name and its usual forms, each with how it relates to the name.

    A village whose name begins with its street's full name (甲一街道北村) is also known by
    the rest (北村): the street's name is consumed by the street.
    """
    if level == "village" and parent_name and name.startswith(parent_name):
        rest = name[len(parent_name):]
        extra = [(t, "short") for t, _how in name_forms(rest, level) if len(t) >= 2
                 and not _is_suffix(t)]
        return _unique([*name_forms(name, level), *extra])
    forms = [(name, "official")]

    def add(*texts: str) -> None:
        for text in texts:
            if len(text) >= 2 and text != name:
                forms.append((text, "short"))

    if level == "district":
        if name.endswith("区") and len(name) >= 3:
            add(name[:-1])
    elif level == "street":
        if name.endswith("街道"):
            core = name[:-2]
            add(core + "街", core + "街道办事处", core + "街道办")
        elif name.endswith("镇"):
            add(name + "人民政府")
    else:
        for suffix in _URBAN_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = name[: -len(suffix)]
                core = base[:-2] if base.endswith("社区") and len(base) > 3 else base
                add(core + "社区居民委员会", core + "社区居委会", core + "居民委员会",
                    core + "居委会", core + "社区")
                return _unique(forms)
        for suffix in _RURAL_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = name[: -len(suffix)]
                if suffix == "委员会" and not base.endswith("村"):
                    return forms
                cores = [base] if not base.endswith("村") else [base, base[:-1]]
                for core in cores:
                    add(core + "村民委员会", core + "村委会")
                add(base if base.endswith("村") else base + "村")
                return _unique(forms)
    return _unique(forms)


def _holds_streets(found: _Reading, streets: list[_Hit]) -> bool:
    """True when every street name read lies inside the village's name and is its street
    (梯面镇居民委员会 holds 梯面镇): then no other street is named and no street's name was
    taken apart for a village."""
    hit = found.parts[-1][1]
    return all(hit.start <= street.start and street.end <= hit.end
               and found.street in street.entry.codes for street in streets)


def _is_suffix(text: str) -> bool:
    """True for a bare 居民委员会 / 村委会 … (what is left of 梯面镇居民委员会 without 梯面镇)."""
    return text in (*_URBAN_SUFFIXES, *_RURAL_SUFFIXES, "社区", "村")


def _unique(forms: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for text, how in forms:
        seen.setdefault(text, how)
    return list(seen.items())


def _segment_starts(norm: str) -> set[int]:
    starts = {0}
    index = norm.find(SEP)
    while index >= 0:
        starts.add(index + 1)
        index = norm.find(SEP, index + 1)
    return starts


def _leftmost_longest(hits: list[_Hit]) -> list[_Hit]:
    """Non-overlapping hits, leftmost first and the longest at each start."""
    chosen: list[_Hit] = []
    end = -1
    for hit in hits:  # sorted by start, then longest first
        if hit.start >= end:
            chosen.append(hit)
            end = hit.end
        elif chosen and hit.start == chosen[-1].start and hit.end == chosen[-1].end:
            chosen.append(hit)  # the same text as a name of another level
    return chosen


def _part(level: str, hit: _Hit | None, code: str, parser: AddressParser) -> str:
    if hit is None:  # known from a code column
        return f"{LEVEL_ZH[level]} {parser.name.get(code, code)}（{HOW_ZH['code']}）"
    how = hit.entry.how.get(code, "official")
    official = parser.name.get(code, code)
    target = "" if hit.text == official else f"→{official}"
    return f"{LEVEL_ZH[level]}「{hit.text}」{HOW_ZH[how]}{target}"


# -- the user's alias file -------------------------------------------------------------------


def read_aliases(path: str | Path, *, known_codes: Iterable[str] | None = None) -> pd.DataFrame:
    """Read an alias file: CSV (UTF-8 or GBK) with columns 别名 (alias) and 区划代码 (code).

    One line per name people write for a unit, e.g. ``沙坑村,440113017206`` or a former
    street name. Every problem is listed at once.

    Returns
    -------
    DataFrame
        ``alias``, ``code``.

    Raises
    ------
    SourceError
        When the file cannot be read, lacks the two columns, or names unknown codes.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"别名文件无法读取：{path}（{exc.strerror}）/ cannot read the alias "
                          f"file {path}: {exc.strerror}") from exc
    text = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise SourceError(f"别名文件编码无法识别：{path} / the alias file {path} is neither UTF-8 "
                          "nor GBK")
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip().lower() for h in (rows[0] if rows else [])]
    columns = {}
    for key, names in _ALIAS_HEADERS.items():
        columns[key] = next((header.index(n) for n in names if n in header), None)
    if None in columns.values():
        raise SourceError(f"别名文件须有“别名”和“区划代码”两列：{path} / the alias file {path} "
                          "needs the columns 别名 (alias) and 区划代码 (code)")
    known = set(known_codes) if known_codes is not None else None
    problems, out = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        alias = row[columns["alias"]].strip() if columns["alias"] < len(row) else ""
        code = row[columns["code"]].strip() if columns["code"] < len(row) else ""
        if len(normalise(alias)) < 2:
            problems.append(f"第{line}行：别名至少两个字 / line {line}: an alias needs 2+ characters")
        elif known is not None and code not in known:
            problems.append(f"第{line}行：未知区划代码 {code} / line {line}: unknown unit code {code}")
        else:
            out.append((alias, code))
    if problems:
        raise SourceError(f"别名文件 {path} 有 {len(problems)} 处问题 / the alias file has "
                          f"{len(problems)} problem(s): " + "；".join(problems))
    return pd.DataFrame(out, columns=["alias", "code"])
