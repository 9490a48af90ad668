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


@pytest.mark.parametrize(
    ("text", "first_lines"),
    [
        # Indented and trailed by blanks, and the last one without a line end.
        (
            "VZCZCXYZ0001\nFM A\nSECRET X 0001\n  NNNN \t\nVZCZCXYZ0002\nFM B\nNNNN",
            ["VZCZCXYZ0001", "VZCZCXYZ0002"],
        ),
        # `NNNN` inside a line, or five of them, ends nothing.
        ("VZCZCXYZ0001\nFM A\nSEE NNNN\nNNNNN\nFM B\n", ["VZCZCXYZ0001"]),
    ],
)
def test_only_nnnn_lines_end_telegrams(text: str, first_lines: list[str]) -> None:
    chunks = split_cables(text)
    assert [chunk.text.split("\n")[0] for chunk in chunks] == first_lines


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


def test_a_routing_header_before_a_record_dump_is_one_cable_with_it() -> None:
    # The header (#0071) names the cable; the dump's id (09ASUNCION13) names other text.
    chunks = split_cables(_corpus_file("0265_1d6dfa7a23bc9c72.txt"))
    assert len(chunks) == 1
    assert chunks[0].text.startswith("VZCZCXYZ0000\nOO RUEHWEB\n\nDE RUEHAC #0071/01")
    assert chunks[0].release.reference_id is None


def test_a_routing_header_before_the_dump_of_its_own_cable_keeps_the_dump_metadata() -> None:
    header = "VZCZCXYZ0000\nDE RUEHAC #0013/01 0092220\nZNY CCCCC ZZH\nFM AMEMBASSY ASUNCION\n\n"
    dump = (
        "id: 1\ndate: 1/9/2009 22:20\nrefid: 09ASUNCION13\norigin: Embassy Asuncion\n"
        "classification: CONFIDENTIAL\ndestination:\nheader:\nCONFIDENTIAL ASUNCION 000013\n"
    )
    chunks = split_cables(header + dump)
    assert [c.release.reference_id for c in chunks] == ["09ASUNCION13"]


# Real snippets of what surrounds a cable without being one (corpus-bulk files named).
_EMAIL_WRAPPER = (  # 1561_b0ff5b5aa88ce40e.txt
    "From: CBPC, EACTAPP [EACTAPP@state.sgov.gov]\nSent: Monday, March 17, 2008 6:49 PM\n"
    "To: EACTTripoli(Main State Room 2530)\nSubject: TRIPOLI 00000230 R CO 17-MAR-08 LIBYA "
    "MAKES PROGRESS ON BANKING\nREFORM [7168207]\n\nCONFIDENTIAL\n\n"
)
_SERIAL_PREVIEW = (
    "TelegramC O N F I D E N T I A L   TRIPOLI   00000453 \n"  # 1665_2f3f4f8f7ca9669d.txt
)
_TELEGRAM = (
    "VZCZCXRO7088\nRR RUEHTRO\nDE RUEHTRO #0230/01 0771653\nZNY CCCCC ZZH\nR 171653Z MAR 08\n"
    "FM AMEMBASSY TRIPOLI\nTO RUEHC/SECSTATE WASHDC 3246\n\nC O N F I D E N T I A L TRIPOLI "
    "000230\n\nE.O. 12958: DECL: 3/17/2018\nTAGS: EFIN LY\nSUBJECT: LIBYA BANKING\n\n"
    "1. (C) Text.\nSTEVENS\n"
)


@pytest.mark.parametrize("lead_in", [_EMAIL_WRAPPER, _SERIAL_PREVIEW, "Cable Text:    \n"])
def test_text_before_the_telegram_is_kept_with_it(lead_in: str) -> None:
    chunks = split_cables(lead_in + _TELEGRAM)
    assert [(c.text, c.offset) for c in chunks] == [(lead_in + _TELEGRAM, 0)]


@pytest.mark.parametrize(
    "trailer",
    [
        "End Cable Text\n",  # 3296_e4362d3f77450e7c.txt
        '\t2005ROME03081 - Classification: CONFIDENTIAL \n\n"\n',  # 2958_54374e761bd20293.txt
    ],
)
def test_text_after_the_end_marker_is_no_cable(trailer: str) -> None:
    chunks = split_cables(_TELEGRAM + "NNNN\n" + trailer)
    assert [c.text for c in chunks] == [_TELEGRAM + "NNNN\n"]
    assert chunks[0].warnings == ["text_after_cable_dropped"]


def test_a_header_repeated_after_the_end_marker_is_the_same_cable() -> None:
    # 2275_34e65b623e895aa6.txt: the routing header printed again after `NNNN`.
    header = "O 161036Z DEC 04\nFM USLO TRIPOLI\nTO AMEMBASSY PARIS IMMEDIATE\n"
    text = f"{header}\nCONFIDENTIAL TRIPOLI 000031\n\n1. (C) Text.\nNNNN\n\n{header}"
    chunks = split_cables(text)
    assert len(chunks) == 1 and chunks[0].text.startswith(header)
    assert chunks[0].warnings == ["repeated_header_dropped"]


@pytest.mark.parametrize(
    "preview",
    [
        # 0031_7438360bf58e3f8d.txt: only the release's partial-extract notice.
        "This record is a partial extract of the original cable. The full text of the "
        "original cable is not available.\n\n",
        # 1846_58cd0771a4edddf7.txt: a truncated copy naming the same serial line.
        "C O N F I D E N T I A L SECTION 01 OF 02 QUITO 001978 \n \nSIPDIS \n \n"
        "E.O. 12958: DECL: 08/22/2010 \nTAGS: PREL ECON EFIN VE EC\nClassified By: CDA...\n\n",
    ],
)
def test_a_preview_of_the_dumped_cable_is_dropped(preview: str) -> None:
    dump = (
        "id: 1\ndate: 8/22/2005 12:00\nrefid: 05QUITO1978\norigin: Embassy Quito\n"
        "classification: CONFIDENTIAL\ndestination: \nheader:\n----- header ends -----\n\n"
        "C O N F I D E N T I A L SECTION 01 OF 02 QUITO 001978 \n\nTAGS: PREL\n1. (C) Text.\n"
    )
    chunks = split_cables(preview + dump)
    assert [c.release.reference_id for c in chunks] == ["05QUITO1978"]
    assert chunks[0].warnings == ["preview_before_record_dropped"]


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


@pytest.mark.parametrize(
    ("page", "rendering"),
    [
        # `<pre` in lower case somewhere, its element in upper case, `</html>` and no table.
        ("<html><PRE>FM AMEMBASSY ROME\nSECRET ROME 000001</PRE> <pre x</html>", "html"),
        # Only upper-case `<PRE>`: no release page, plain text.
        ("<html><table class='cable'><PRE>FM AMEMBASSY ROME</PRE></html>", "telegram"),
        # A `<pre>` element with neither a table nor `</html>`.
        ("<pre>FM AMEMBASSY ROME\nSECRET ROME 000001</pre>", "telegram"),
    ],
)
def test_what_makes_a_release_page(page: str, rendering: str) -> None:
    assert split_cables(page)[0].rendering == rendering


def test_many_unclosed_tags_split_in_linear_time() -> None:
    page = "<html><table class='cable'>" + "<td><pre>" * 100_000 + "</html>"
    # Not a timing test: a quadratic scan of this page takes minutes, a linear one no time.
    assert split_cables(page)[0].rendering == "telegram"
