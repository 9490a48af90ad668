import pytest

from cablestream.tasks.parse.normalize import (
    detect_rendering,
    drop_page_break_lines,
    join_spaced_words,
    normalize,
    strip_markup,
    unglue_fields,
)


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("TAGS: <u>IAEA KNNP PREL</u>", "TAGS: IAEA KNNP PREL"),
        ("TAGS: [KNNP](#) [KZ](#)", "TAGS: KNNP KZ"),
        (
            "TAGS: <a href='/tag/MASS_0.html'>MASS</a> <a href='/tag/IR_0.html'>IR</a>",
            "TAGS: MASS IR",
        ),
        ("line one&#x000A;line two &amp; more", "line one\nline two & more"),
        ("<a id='par1' href='#par1'>¶</a>1. ON FEB 24", "1. ON FEB 24"),
    ],
)
def test_strip_markup(raw: str, plain: str) -> None:
    assert strip_markup(raw, "html") == plain


def test_latex_residue_only_in_latex() -> None:
    assert (
        strip_markup(" $\\underline{\\mbox{1}}\\mbox{1}.$ (S) Per reftel", "latex")
        == " 11. (S) Per reftel"
    )
    # Outside LaTeX renderings a dollar sign is money.
    assert (
        strip_markup("prices near $128/barrel and $5", "telegram")
        == "prices near $128/barrel and $5"
    )


@pytest.mark.parametrize(
    ("raw", "joined"),
    [
        ("C O N F I D E N T I A L ALMATY 002231", "CONFIDENTIAL ALMATY 002231"),
        ("S E C R E T ASTANA 000988", "SECRET ASTANA 000988"),
        ("SE C R E T SECTION 01 OF 02", "SECRET SECTION 01 OF 02"),
        ("C o n f i d e n t i a l section 01 of 04 ankara", "Confidential section 01 of 04 ankara"),
        ("a U.S. and UK team", "a U.S. and UK team"),
    ],
)
def test_join_spaced_words(raw: str, joined: str) -> None:
    assert join_spaced_words(raw) == joined


def test_normalize_markdown_extract() -> None:
    raw = (
        "\n\nThis record is a partial extract of the original cable. The full text of the original "
        "cable is not available.\n\nC O N F I D E N T I A L ALMATY 002231\r\n\r\n"
        "1 . (C) U.S., UK and French Ambassadors\n\n12. (C) Tokayev"
    )
    result = normalize(raw)
    assert result.rendering == "markdown"
    assert result.is_partial
    assert result.text.startswith("CONFIDENTIAL ALMATY 002231\n")
    assert "1. (C) U.S." in result.text
    assert "\r" not in result.text


def test_normalize_unglues_fields_and_drops_page_breaks() -> None:
    raw = (
        "Cable dated:2008-06-03T15:39:00C O N F I D E N T I A L SECTION 01 OF 04 RIYADH 000868SIPDISNEA "
        "FOR DAS GGRAY TCOYNEE.O. 12958: DECL: 06/03/2018 TAGS: EPET ENERG\n"
        "MILAN 00000176  001.2 OF 003\nnext line"
    )
    lines = normalize(raw).text.split("\n")
    assert lines[0] == "Cable dated:2008-06-03T15:39:00"
    assert lines[1] == "CONFIDENTIAL SECTION 01 OF 04 RIYADH 000868"
    assert "E.O. 12958: DECL: 06/03/2018" in lines
    assert "TAGS: EPET ENERG" in lines
    assert "MILAN 00000176  001.2 OF 003" not in lines


def test_backslash_continuations_of_release_dumps() -> None:
    assert (
        normalize("UNCLAS BERN 000896 \\\n \\\nSENSITIVE \\\n").text
        == "UNCLAS BERN 000896\n\nSENSITIVE"
    )


def test_detect_rendering() -> None:
    assert detect_rendering("TAGS: <u>X</u>", "telegram") == "html_fragment"
    assert detect_rendering("plain", "telegram") == "telegram"
    assert detect_rendering("plain", "csv") == "csv"


@pytest.mark.parametrize("tail", ["</", "x", "\\x"])
def test_long_blank_run_not_at_line_end_is_linear(tail: str) -> None:
    """Found by the generated adversarial search: `</u>  ` repeated, cut off before its `>`.

    A blank-run pattern tried from every blank costs n² here (16 s at 200 KB before the fix).
    """
    import time

    started = time.perf_counter()
    normalize(" " * 400_000 + tail)
    assert time.perf_counter() - started < 1.0


def test_spaced_words_on_several_lines_and_beside_other_text() -> None:
    text = "S E C R E T ROME 000123\nplain line\nC O N F I D E N T I A L SECTION 02 OF 03\nA B C"
    assert join_spaced_words(text) == (
        "SECRET ROME 000123\nplain line\nCONFIDENTIAL SECTION 02 OF 03\nA B C"
    )


def test_overlapping_sipdis_is_one_field() -> None:
    assert unglue_fields("000868SIPDISIPDIS") == "000868\nSIPDISIPDIS"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        # The page number may sit on the next line: the blank run before it spans the line end.
        ("text\nALGIERS 00000085\n002 OF 002\nmore", "text\nmore"),
        ("text\nALGIERS 00000085  002 OF 002", "text\n"),
        # `000` on a line that is not a page header: kept, and the next line still checked.
        ("serial 000123 OF 004\nROME 00000085  002 OF 002\nend", "serial 000123 OF 004\nend"),
    ],
)
def test_page_break_lines(raw: str, kept: str) -> None:
    assert drop_page_break_lines(raw) == kept


def test_latex_nesting_is_undone_level_by_level_up_to_a_bound() -> None:
    assert strip_markup(r"\underline{\mbox{\textbf{1}}}.", "latex") == "1."
    deep = "\\mbox{" * 50 + "x" + "}" * 50
    # Past the bound the outer commands stay: real renderings nest two deep.
    assert strip_markup(deep, "latex") == "\\mbox{" * 44 + "x" + "}" * 44


def test_an_executive_order_named_in_a_subject_stays_on_its_line() -> None:
    # 1699_0e8283d49cd99f99.txt (corpus-bulk); an E.O. field has `:`, DECL or N/A after its number.
    subject = "SUBJECT: GOI NOTIFIED OF IRANIAN ENTITIES UNDER E.O. 13382"
    assert unglue_fields(subject) == subject
    assert (
        unglue_fields("TCOYNEE.O. 12958: DECL: 06/03/2018")
        == "TCOYNE\nE.O. 12958: DECL: 06/03/2018"
    )
