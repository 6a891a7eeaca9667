"""Addresses land in the right village or stay above it with the reason: real names from the
bundled grid (geo/data/divisions_2023.csv), every form a clerk writes, every failure named
in issue 12, conflicts, ambiguous names, a user alias file, and two properties."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.address import NOTES, AddressParser, name_forms, read_aliases
from etl.ingest import ingest_cases, ingest_cases_frame
from geo import schema
from geo.bundled import read_divisions
from geo.errors import SourceError
from geo.settings import Settings
from geo.store import Store
from tests.conftest import run_cli

SHAWAN = "440113017000"  # 番禺区沙湾街道
SHANAN = "440113017206"  # 沙湾街道 沙南村民委员会 (another 沙南村民委员会 is in 440113105)
ZINI_VILLAGE, ZINI_COMMUNITY = "440113017214", "440113017002"  # 紫坭村民委员会, 紫坭社区居民委员会
PAITAN, BEIYIN = "440118105000", "440118105234"  # 增城区派潭镇, 背阴村委会
SHILING = "440114109000"  # 花都区狮岭镇 (its 狮岭居委会 is 440114109001)
WUSHAN = "440106001000"  # 天河区五山街道


@pytest.fixture(scope="module")
def divisions() -> pd.DataFrame:
    return read_divisions()


@pytest.fixture(scope="module")
def parser(divisions) -> AddressParser:
    return AddressParser(divisions)


def test_the_three_addresses_of_the_issue(parser):
    first = parser.parse("广州市番禺区沙湾街道沙南村民委员会大街51号")
    assert (first.village, first.street) == (SHANAN, SHAWAN)  # not 沙湾社区 (沙湾 is the street)
    second = parser.parse("增城区派潭镇背阴村委会55号")
    assert second.village == BEIYIN  # not 派潭村委会 (派潭 is the town)
    third = parser.parse("广州市花都区狮岭镇派出所旁")
    assert (third.village, third.street, third.note) == (None, SHILING, "未识别村居")
    assert first.parts == "区「番禺区」全称；镇街「沙湾街道」全称；村居「沙南村民委员会」全称"


@pytest.mark.parametrize(("text", "village"), [
    ("番禺区沙湾街道沙湾社区居委会1号", "440113017001"),      # 社区居民委员会 as 社区居委会
    ("番禺区沙湾街道沙湾居委会", "440113017001"),              # … as 居委会
    ("番禺区沙湾街道沙湾社区", "440113017001"),                # … as 社区
    ("增城区派潭镇派潭社区12号", "440118105001"),              # 社区居委会 as 社区
    ("花都区狮岭镇狮岭社区", "440114109001"),                  # 居委会 as 社区
    ("番禺区沙湾街道紫坭村 8号", ZINI_VILLAGE),                # 村民委员会 as 村 (not 紫坭社区)
    ("番禺区沙湾街道紫坭村委会", ZINI_VILLAGE),                # … as 村委会
    ("番禺区沙湾街道紫坭社区", ZINI_COMMUNITY),
    ("增城区派潭镇背阴村", BEIYIN),                            # 村委会 as 村
    ("番禺沙湾街道紫坭村", ZINI_VILLAGE),                      # district without 区
    ("沙湾街道紫坭村", ZINI_VILLAGE),                          # no city, no district
    ("广东省广州市番禺区沙湾街紫坭村", ZINI_VILLAGE),          # 省/市 prefix, 街 for 街道
    ("增城区 派潭镇　背阴村委会５５号", BEIYIN),                 # spaces, full-width
    ("（番禺区）沙湾街道，紫坭村", ZINI_VILLAGE),               # punctuation
])
def test_every_usual_form_lands_in_the_village(parser, text, village):
    assert parser.parse(text).village == village


def test_short_street_forms_former_names_and_reading_order(parser):
    wushan = parser.parse("天河区五山街华南农业大学")
    assert (wushan.street, wushan.village) == (WUSHAN, None)
    assert "镇街「五山街」简称→五山街道" in wushan.parts
    assert parser.parse("萝岗区").district == "440112000000"  # 萝岗区 → 黄埔区 since 2014
    # 番禺 + 市桥街道, not 番禺市 (a former name) + 桥街道
    assert parser.parse("番禺市桥街道光明路1号").street == "440113007000"


def test_conflicts_and_ambiguous_names_stay_above_the_village_with_candidates(parser):
    other_street = parser.parse("番禺区沙湾街道背阴村委会")  # 背阴 is in 增城区派潭镇
    assert (other_street.street, other_street.village) == (SHAWAN, None)
    assert other_street.note == NOTES["village_street_conflict"] == "村居与镇街不符"
    assert other_street.candidates == (BEIYIN,)
    shared = parser.parse("番禺区沙南村委会")  # two 沙南村民委员会 in 番禺区
    assert (shared.district, shared.street, shared.village) == ("440113000000", None, None)
    assert shared.note == "村居名称不唯一"
    assert set(shared.candidates) == {SHANAN, "440113105202"}
    wrong_district = parser.parse("番禺区大岗镇")  # 大岗镇 is in 南沙区
    assert (wrong_district.district, wrong_district.street) == ("440113000000", None)
    assert wrong_district.note == "镇街与区不符"
    unanchored = parser.parse("背阴村委会旁")
    assert (unanchored.code, unanchored.candidates) == (None, (BEIYIN,))
    assert unanchored.note == "未指明区或镇街，无法确定村居"


def test_a_known_street_code_anchors_the_reading(parser):
    assert parser.parse("紫坭村", street=SHAWAN).village == ZINI_VILLAGE
    assert parser.parse("背阴村委会", street=SHAWAN).village is None
    assert parser.parse("背阴村委会", district="440118000000").village == BEIYIN


def test_user_alias_file(divisions, tmp_path):
    path = tmp_path / "aliases.csv"
    path.write_text("别名,区划代码\n沙坑,440113017209\n紫坭,440113017214\n紫坭,440113017002\n",
                    encoding="utf-8")
    aliases = read_aliases(path, known_codes=divisions["code"])
    parser = AddressParser(divisions, aliases=aliases)
    hit = parser.parse("番禺区沙湾街道沙坑大街3号")
    assert hit.village == "440113017209" and "村居「沙坑」别名→沙坑村民委员会" in hit.parts
    both = parser.parse("番禺区沙湾街道紫坭大街")  # the alias names two villages of the street
    assert (both.village, both.note) == (None, "村居名称不唯一")
    assert set(both.candidates) == {ZINI_VILLAGE, ZINI_COMMUNITY}
    path.write_text("别名,区划代码\n沙坑,440113017999\n坑,440113017209\n", encoding="utf-8")
    with pytest.raises(SourceError) as err:
        read_aliases(path, known_codes=divisions["code"])
    assert "第2行：未知区划代码 440113017999" in str(err.value)
    assert "第3行：别名至少两个字" in str(err.value)


# -- properties ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(divisions):
    name = dict(zip(divisions["code"], divisions["name"]))
    parent = dict(zip(divisions["code"], divisions["parent_code"]))
    villages = sorted(divisions.loc[divisions["level"] == "village", "code"])
    return name, parent, villages


def _pick(draw, forms: list[tuple[str, str]]) -> str:
    return forms[draw(st.integers(0, len(forms) - 1))][0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_district_street_village_in_any_form_lands_in_that_village(parser, tree, data):
    name, parent, villages = tree
    village = data.draw(st.sampled_from(villages))
    street, district = parent[village], parent[parent[village]]
    pieces = [data.draw(st.sampled_from(["", "广州市", "广东省广州市"]))]
    pieces.append(data.draw(st.sampled_from([""] + [f for f, _ in name_forms(name[district],
                                                                                "district")])))
    pieces.append(data.draw(st.sampled_from([f for f, _ in name_forms(name[street], "street")])))
    pieces.append(data.draw(st.sampled_from([f for f, _ in name_forms(name[village], "village")])))
    pieces.append(data.draw(st.sampled_from(["", "12号", "大街５１号", "附近"])))
    text = data.draw(st.sampled_from(["", " "])).join(pieces)
    assert parser.parse(text).village == village, text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_a_village_of_another_street_never_lands_in_a_village(parser, tree, data):
    name, parent, villages = tree
    street = parent[data.draw(st.sampled_from(villages))]
    village = data.draw(st.sampled_from(villages))
    own_forms = {f for v in villages if parent[v] == street
                 for f, _ in name_forms(name[v], "village")}
    forms = [f for f, _ in name_forms(name[village], "village")]
    form = data.draw(st.sampled_from(forms))
    if parent[village] == street or any(f in own_forms for f in forms):
        return  # the street really has a village of that name
    text = name[parent[street]] + name[street] + form + "8号"
    result = parser.parse(text)
    assert result.village is None, text
    assert result.street == street and result.note == "村居与镇街不符"


# -- through the ingest ------------------------------------------------------------------------


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_ingest_places_by_address_and_keeps_level_note_candidates(tiny_engine):
    frame = pd.DataFrame({
        "信访件编号": ["A1", "A2", "A3", "A4", "A5"],
        "登记时间": ["2024-01-02"] * 5,
        "地址": ["乙区乙二街道北村幸福路1号", "甲区甲镇人民路8号", "甲区南社区", "北村大街1号",
               "无名路1号"],
        "问题属地": [None, None, None, "甲区甲镇", None],
    })
    report = ingest_cases_frame(Store(tiny_engine, Settings()), frame)
    assert report.by_address == {"village": 2, "street": 1, "district": 1}
    columns = ["case_id", "village_code", "street_code", "district_code", "attach_method",
               "attach_level", "attach_note", "attach_candidates", "address_match"]
    with tiny_engine.connect() as conn:
        rows = conn.execute(sa.select(*(schema.cases.c[c] for c in columns))).all()
    got = {r.case_id: r for r in rows}
    assert (got["A1"].village_code, got["A1"].attach_level) == ("440104002201", "village")
    assert got["A1"].address_match == "区「乙区」全称；镇街「乙二街道」全称；村居「北村」简称→乙二街道北村"
    assert (got["A2"].street_code, got["A2"].attach_note) == ("440103101000", "未识别村居")
    assert (got["A3"].district_code, got["A3"].attach_level) == ("440103000000", "district")
    assert got["A3"].attach_note == "村居名称不唯一"
    assert got["A3"].attach_candidates == "440103001001 甲一街道南社区; 440103101001 甲镇南社区"
    assert got["A4"].village_code == "440103101201"  # the street given only in 问题属地
    assert (got["A5"].attach_method, got["A5"].attach_note) == ("unassigned", NOTES["nothing"])


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_cli_prints_rows_placed_by_address_per_level(tiny_engine, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text("信访件编号,登记时间,地址\nA1,2024-01-02,乙区乙二街道北村幸福路1号\n"
                    "A2,2024-01-02,甲镇人民路8号\nA3,2024-01-02,无名路\n", encoding="utf-8")
    result = run_cli(tiny_engine, ["ingest", "cases", str(path)])
    assert result.exit_code == 0, result.output
    assert "按地址落格：村居 1，仅到镇街 1，仅到区 0" in result.output
    assert "placed by address: village 1, street only 1, district only 0" in result.output
    again = ingest_cases(Store(tiny_engine, Settings()), path)
    assert again.unchanged == 3
