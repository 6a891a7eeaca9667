"""Division code rules (统计用区划代码): levels, parents, kinds, nesting."""

import pytest

from geo import codes
from geo.errors import CodeError


@pytest.mark.parametrize(
    ("code", "level", "parent", "kind"),
    [
        ("440100000000", "city", None, "市"),
        ("440103000000", "district", "440100000000", "区"),
        ("440103001000", "street", "440103000000", "街道"),
        ("440113101000", "street", "440113000000", "镇"),
        ("440117404000", "street", "440117000000", "特殊区域"),
        ("440103001001", "village", "440103001000", "居委会"),
        ("440113101201", "village", "440113101000", "村委会"),
        ("440113101498", "village", "440113101000", "类居委会"),
        ("440113101598", "village", "440113101000", "类村委会"),
        ("440103001001007", "grid", "440103001001", "网格"),
    ],
)
def test_code_tells_level_parent_and_kind(code, level, parent, kind):
    assert codes.level_of(code) == level
    assert codes.parent_of(code) == parent
    assert codes.unit_kind(code) == kind


@pytest.mark.parametrize("bad", ["44010300100", "4401030010001", "44010300100X", "", None, 440103])
def test_malformed_code_is_refused_with_a_bilingual_message(bad):
    with pytest.raises(CodeError, match="12位数字.*12 digits"):
        codes.level_of(bad)


def test_a_village_nests_in_its_streets_nine_digits_only():
    assert codes.nests_in("440103001001", "440103001000")
    assert not codes.nests_in("440103002001", "440103001000")
    assert not codes.nests_in("440103001001", "440103000000")  # skips a level
    with pytest.raises(CodeError, match="不属于上级"):
        codes.validate_code("440103002001", parent_code="440103001000")
    with pytest.raises(CodeError, match="not a street code"):
        codes.validate_code("440103002001", level="street")


def test_every_bundled_code_nests_in_its_parent():
    from geo.bundled import read_divisions

    divisions = read_divisions()
    below_city = divisions[divisions["level"] != "city"]
    assert all(codes.parent_of(c) == p for c, p in zip(below_city["code"], below_city["parent_code"]))
    assert (divisions["level"].value_counts().to_dict()
            == {"village": 2851, "street": 178, "district": 11, "city": 1})
