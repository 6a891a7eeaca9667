"""Filters: a frozen value that survives a round trip through a dashboard URL."""

from __future__ import annotations

from datetime import date

import pytest

from layers.filters import Filters


def test_round_trip_through_a_query_string():
    filters = Filters(date_from=date(2025, 1, 1), date_to=date(2025, 3, 31),
                      category=("劳动和社会保障", "城乡建设"), channel=("网上",), status=("open",))
    query = filters.to_query()
    assert query.startswith("from=2025-01-01&to=2025-03-31&category=")
    assert Filters.from_query(query) == filters
    assert Filters.from_query("?" + query) == filters
    assert hash(Filters.from_query(query)) == hash(filters)


def test_values_are_sorted_so_equal_filters_give_equal_urls():
    assert Filters(category=("b", "a")).to_query() == Filters(category=("a", "b")).to_query()
    assert Filters(category="a") == Filters(category=("a",))


def test_values_with_commas_and_spaces_survive():
    filters = Filters(category=("党务政务, 其他",), purpose=("意见建议",))
    assert Filters.from_query(filters.to_query()) == filters


def test_empty_and_mapping_inputs():
    assert Filters.from_query("") == Filters() and Filters().to_query() == ""
    assert Filters().is_empty() and not Filters(purpose=("求决",)).is_empty()
    parsed = Filters.from_query({"from": ["2025-02-01"], "status": ["overdue", "closed"],
                                 "page": ["2"]})
    assert parsed == Filters(date_from=date(2025, 2, 1), status=("closed", "overdue"))


def test_bad_values_say_what_to_do():
    with pytest.raises(ValueError, match="unknown status"):
        Filters(status=("late",))
    with pytest.raises(ValueError, match="after date_to"):
        Filters(date_from=date(2025, 2, 1), date_to=date(2025, 1, 1))


def test_filters_and_export_notes_read_in_chinese():
    from datetime import datetime

    from layers.exports import export_notes

    filters = Filters(date_from=date(2025, 1, 1), date_to=date(2025, 3, 31),
                      category=("劳动社保", "城乡建设"), status=("overdue",))
    assert filters.describe_zh() == ["登记日期：2025-01-01 至 2025-03-31",
                                     "内容分类：劳动社保、城乡建设", "办理状态：超期未办结"]
    assert Filters().describe_zh() == ["无（全部案件）"]
    notes = export_notes(unit_name="甲区", unit_level="district", view_title="领导视图",
                         filters=filters, as_of=datetime(2025, 6, 30, 23, 41), rows=150_000,
                         limit=100_000, account_area="440100000000")
    facts = notes.groupby("项目")["内容"].apply(list).to_dict()
    assert facts["范围"] == ["甲区（区）"] and facts["视图"] == ["领导视图"]
    assert facts["筛选条件"] == filters.describe_zh()
    assert facts["数据截至"] == ["2025-06-30 23:41"]
    assert facts["行数"][0].startswith("100,000 行（共 150,000 件")
    assert "脱敏" in facts["个人信息"][0]
