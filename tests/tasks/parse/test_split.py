from datetime import UTC, datetime
from pathlib import Path

import pytest

from cablestream.tasks.parse.split import split_cables

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "files"


def _corpus_file(name: str) -> str:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("shared corpus not present")
    return path.read_text(encoding="utf-8")


def test_telegrams_closed_by_nnnn() -> None:
    text = "VZCZCXYZ0001\nFM A\nSECRET X 0001\nNNNN\nVZCZCXYZ0002\nFM B\nSECRET Y 0002\nNNNN\n"
    chunks = split_cables(text)
    assert [chunk.text.split("\n")[0] for chunk in chunks] == ["VZCZCXYZ0001", "VZCZCXYZ0002"]
    assert chunks[1].offset == text.index("VZCZCXYZ0002")


def test_vzczc_opens_a_new_cable_without_nnnn() -> None:
    chunks = split_cables("VZCZCA\nFM A\n\nVZCZCB\nFM B\n")
    assert len(chunks) == 2


def test_csv_rows_carry_release_metadata() -> None:
    text = _corpus_file("0001_d7a37ce9efea2505.csv")
    chunks = split_cables(text)
    assert len(chunks) == 3
    first = chunks[0]
    assert first.rendering == "csv"
    assert first.release.reference_id == "72TEHRAN1164"
    assert first.release.created == datetime(1972, 2, 25, 9, 30, tzinfo=UTC)
    assert first.release.references == ("72MOSCOW1603", "72TEHRAN1091", "72TEHRAN263")
    # Backslash-escaped quotes are decoded.
    assert "SHAH'S" in first.text and "\\'" not in first.text


def test_release_page_has_text_and_metadata() -> None:
    chunks = split_cables(_corpus_file("0012_61938564b3c2ade4.html"))
    assert len(chunks) == 1
    assert chunks[0].release.reference_id == "72TEHRAN1164"
    assert chunks[0].release.classification == "UNCLASSIFIED"
    assert "FM AMEMBASSY TEHRAN" in chunks[0].text
    assert "Follow us on Twitter" not in chunks[0].text


def test_record_dump_drops_its_preview() -> None:
    chunks = split_cables(_corpus_file("0278_245b86e34db83948.txt"))
    assert len(chunks) == 1
    assert chunks[0].release.reference_id == "09QUITO602"
    assert chunks[0].warnings == ["preview_before_record_dropped"]


def test_embedded_tsv_row_gives_metadata_and_drops_the_header_copy() -> None:
    chunks = split_cables(_corpus_file("0177_8bc8823e752e08ba.txt"))
    assert len(chunks) == 1
    chunk = chunks[0]
    assert chunk.release.reference_id == "07BERN896"
    assert chunk.release.created == datetime(2007, 9, 13, 5, 53, tzinfo=UTC)
    assert chunk.release.classification == "UNCLASSIFIED//FOR OFFICIAL USE ONLY"
    assert chunk.warnings == ["repeated_header_dropped"]
    assert chunk.text.startswith("VZCZCXYZ0000\\")


def test_embedded_unquoted_csv_row() -> None:
    chunks = split_cables(_corpus_file("0531_bfd8ea054364ffb2.txt"))
    assert [c.release.reference_id for c in chunks] == ["05BOGOTA1775"]
    assert chunks[0].release.origin == "Embassy Bogota"
    assert chunks[0].release.references == ("05BOGOTA1081",)


def test_preview_of_another_cable_is_kept_before_a_record_dump() -> None:
    chunks = split_cables(_corpus_file("0265_1d6dfa7a23bc9c72.txt"))
    assert [c.release.reference_id for c in chunks] == [None, "09ASUNCION13"]
    assert "#0071/01" in chunks[0].text


def test_release_page_elements_pair_like_a_lazy_match() -> None:
    """Unclosed `<pre>`/`<td>` tags neither hide the closed ones nor rescan the page."""
    page = (
        "<html><table class='cable'><tr><td>09ROME1<td>x</td><td>2009-01-02 03:04</td>"
        "<td>a</td><td>SECRET</td><td>Embassy Rome</td></tr></table>"
        "<pre>unclosed <pre>FM AMEMBASSY ROME</pre><pre>1. Text.</pre><pre>open</html>"
    )
    chunks = split_cables(page)
    assert len(chunks) == 1
    assert chunks[0].text == "unclosed <pre>FM AMEMBASSY ROME\n\n1. Text."
    assert chunks[0].release.reference_id == "09ROME1x"
    assert chunks[0].release.classification == "SECRET"


def test_many_unclosed_tags_split_in_linear_time() -> None:
    page = "<html><table class='cable'>" + "<td><pre>" * 100_000 + "</html>"
    # Not a timing test: a quadratic scan of this page takes minutes, a linear one no time.
    assert split_cables(page)[0].rendering == "telegram"
