"""docs/metrics.md is the registry of layers/definitions.py; the registry covers every metric."""

from __future__ import annotations

from pathlib import Path

from layers.coverage import COVERAGE_COLUMNS
from layers.definitions import METRICS, render_markdown
from layers.metrics import COUNTS, RATES

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_match_the_registry():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/metrics.md is stale: run `python -m layers.definitions`"
    )


def test_every_computed_metric_is_defined_in_both_languages():
    wanted = set(RATES) | set(COUNTS) | {
        "cases_per_km2", "cases_per_10k", "days_to_close_median", "days_to_close_p90",
    } | (set(COVERAGE_COLUMNS) - {"code", "uncovered"})
    assert wanted <= set(METRICS)
    for m in METRICS.values():
        assert m.label_zh and m.label_en and m.formula_zh and m.formula_en and m.source
        assert m.cohort_zh and m.cohort_en
        assert m.kind in {"rate", "count", "density", "distance", "share", "days", "flag"}


def test_warning_rules_doc_matches_the_registry():
    from layers.warnings.definitions import RULES
    from layers.warnings.definitions import render_markdown as warnings_markdown

    doc = DOC.with_name("warnings.md")
    assert doc.read_text(encoding="utf-8") == warnings_markdown(), (
        "docs/warnings.md is stale: run `python -m layers.warnings.definitions`")
    for rule in RULES.values():
        assert rule.label_zh and rule.text_zh and rule.source and rule.level in ("red", "yellow")
