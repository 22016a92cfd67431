"""The table printer: docs/BENCHMARKS.md shows what the recorded runs measured, as the printer prints it."""

from __future__ import annotations

from loadtests import harness
from loadtests.tables import BENCHMARKS, BLOCK, RECORDS, tables, written


def test_a_records_block_is_printed_afresh_and_the_text_around_it_is_kept():
    printed = tables("queue")
    text = (
        "# Title\n\nprose before\n\n"
        "<!-- record: queue -->\n| stale | table |\n| --- | --- |\n| 1 | 2 |\n<!-- /record -->\n\nprose between\n\n"
        "<!-- record: queue -->\n<!-- /record -->\n\nprose after\n"
    )
    out = written(text)
    assert "stale" not in out
    assert out.count(printed) == 2, "a stale block and an empty one are both printed"
    assert out.startswith("# Title\n\nprose before\n\n<!-- record: queue -->\n" + printed + "\n<!-- /record -->")
    assert "<!-- /record -->\n\nprose between\n\n" in out and out.endswith("<!-- /record -->\n\nprose after\n")
    assert written(out) == out, "printing again changes nothing"


def test_figures_print_as_percentiles_and_right_aligned_numbers():
    assert harness.ms([5, 1, 3, 2, 4]) == "3 / 5 / 5"
    assert harness.ms([]) == "– / – / –"
    assert harness.table("what | count:", [["claims", "1,000"]]).splitlines() == [
        "| what | count |",
        "| --- | ---: |",
        "| claims | 1,000 |",
    ]


def test_every_record_stands_in_the_benchmarks_as_its_table_printer_prints_it():
    text = BENCHMARKS.read_text()
    assert written(text) == text, "run: .venv/bin/python -m loadtests.tables --write"
    shown = [match.group("name") for match in BLOCK.finditer(text)]
    assert sorted(shown) == sorted(path.stem for path in RECORDS.glob("*.json")), "a record without its block"
