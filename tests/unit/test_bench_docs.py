"""`salespulse-bench pipeline --write-docs` and `--repeat`: pure functions over text and figures."""

from __future__ import annotations

import math

import pytest

from bench.pipeline import comparisons, summarise, with_query_section
from bench.query_docs import BEGIN, END

OLD_BENCH = "# Benchmarks\n\nold figures\n"
QUERY = f"{BEGIN}\n\n## Query and memory\n\n| figure | 10 deals |\n{END}\n"
READING = "\n### Reading the query figures (hand-written)\n\nWhat they mean.\n"


def test_regenerating_the_bench_figures_keeps_the_query_section_and_the_text_after_it() -> None:
    existing = OLD_BENCH + "\n" + QUERY + READING

    written = with_query_section("# Benchmarks\n\nnew figures\n", existing)

    assert written == "# Benchmarks\n\nnew figures\n\n" + QUERY + READING
    assert "old figures" not in written


def test_without_a_query_section_the_bench_figures_are_the_whole_file() -> None:
    assert with_query_section("# Benchmarks\n\nnew\n", OLD_BENCH) == "# Benchmarks\n\nnew\n"


def test_regenerating_twice_changes_nothing_more() -> None:
    once = with_query_section("# Benchmarks\n\nnew\n", OLD_BENCH + QUERY + READING)

    assert with_query_section("# Benchmarks\n\nnew\n", once) == once


def _run(ingest: float, ceiling: float, **more: float) -> dict[str, float]:
    rates = {"relay_events_per_s": 1.0, "relay_ceiling_events_per_s": 2.0,
             "projector_alone_steady_events_per_s": 1.0,
             "projector_alone_from_start_events_per_s": 1.0,
             "end_to_end_events_per_s": 1.0, "rebuild_events_per_s": 1.0,
             "rebuild_copy_steady_events_per_s": 1.0, "rebuild_copy_spread_events_per_s": 1.0,
             "projection_ceiling_events_per_s": 4.0, "projector_ceiling_events_per_s": 4.0}
    return {"ingest_events_per_s": ingest, "ingest_ceiling_events_per_s": ceiling, **rates,
            **more}


def test_repeated_runs_report_each_figures_median_and_its_spread() -> None:
    runs = [_run(100, 1000), _run(300, 1000), _run(200, 400)]

    medians, spread = summarise(runs)

    assert medians["ingest_events_per_s"] == 200
    assert spread["ingest_events_per_s"] == [100, 300]
    assert medians["ingest_ceiling_events_per_s"] == 1000
    assert spread["ingest_ceiling_events_per_s"] == [400, 1000]


def test_a_ratio_is_taken_within_each_run_then_its_median_reported() -> None:
    # Per run: 0.1, 0.3, 0.5; the ratio of the medians would be 200 / 1000 = 0.2.
    runs = [_run(100, 1000), _run(300, 1000), _run(200, 400)]

    ingest = next(row for row in comparisons(runs) if row["figure"].startswith("ingest"))

    assert ingest["ratios"] == pytest.approx([0.1, 0.3, 0.5])
    assert ingest["ratio"] == pytest.approx(0.3)
    assert ingest["ratio_spread"] == pytest.approx([0.1, 0.5])
    assert ingest["salespulse_events_per_s"] == 200


def test_scale_out_rows_follow_the_projector_counts_measured() -> None:
    runs = [_run(1, 2, scale_out_ceiling_events_per_s=10.0,
                 scale_out_1_steady_events_per_s=2.0, scale_out_2_steady_events_per_s=3.0)]

    rows = {row["figure"]: row for row in comparisons(runs)}

    scale = [figure for figure in rows if figure.startswith("scale-out")]
    assert len(scale) == 2
    assert [rows[f]["ratio"] for f in scale] == pytest.approx([0.2, 0.3])


def test_a_figure_no_run_could_measure_stays_unknown_rather_than_zero() -> None:
    medians, spread = summarise([{"freshness_p99_ms": math.nan}, {"freshness_p99_ms": math.nan}])

    assert math.isnan(medians["freshness_p99_ms"])
    assert all(math.isnan(value) for value in spread["freshness_p99_ms"])
