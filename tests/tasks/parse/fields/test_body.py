import pytest

from cablestream.schemas.record import Paragraph
from cablestream.tasks.parse.fields.body import (
    parse_paragraphs,
    parse_summary,
    repair_numbers,
    split_signature,
)


@pytest.mark.parametrize(
    ("numbers", "repaired", "changed"),
    [
        ([1, 12, 13], [1, 2, 3], True),  # markdown scrape: `1 .`, `12.`, `13.`
        ([11, 12, 13], [1, 2, 3], True),  # LaTeX residue of paragraph 1 reads `11.`
        ([1, 12, 13, 14, 15, 16, 17, 18, 19, 110, 111], list(range(1, 12)), True),
        ([1, 2, 3], [1, 2, 3], False),
        ([1, 2, 4], [1, 2, 4], False),  # a gap is kept, not invented away
        ([2, 3], [2, 3], False),
    ],
)
def test_repair_numbers(numbers: list[int], repaired: list[int], changed: bool) -> None:
    assert repair_numbers(numbers) == (repaired, changed)


def test_paragraphs_with_markings_and_garbled_numbers() -> None:
    text = (
        "1. (C) U.S., UK and French Ambassadors called on FM Tokayev.\n\n"
        "12. (C) Tokayev, who was joined by Kazakhstani Ambassador.\n"
        "Second line of paragraph two.\n\n"
        "13. (S/NF) Ambassador Sharp asked."
    )
    paragraphs, repaired = parse_paragraphs(text)
    assert repaired
    assert paragraphs == [
        Paragraph(1, "C", "U.S., UK and French Ambassadors called on FM Tokayev."),
        Paragraph(
            2,
            "C",
            "Tokayev, who was joined by Kazakhstani Ambassador. Second line of paragraph two.",
        ),
        Paragraph(3, "S/NF", "Ambassador Sharp asked."),
    ]


def test_marking_right_after_the_dot() -> None:
    paragraphs, _ = parse_paragraphs("1.(C) Summary: In a January meeting.\n\n2.(C) On January 23.")
    assert [(p.number, p.classification) for p in paragraphs] == [(1, "C"), (2, "C")]


def test_unnumbered_paragraphs_are_known_by_their_markings() -> None:
    text = "(SBU) Poloff delivered the demarche.\n\n(U) The MFA took note.\nSecond line."
    paragraphs, repaired = parse_paragraphs(text)
    assert not repaired
    assert paragraphs == [
        Paragraph(None, "SBU", "Poloff delivered the demarche."),
        Paragraph(None, "U", "The MFA took note. Second line."),
    ]


def test_unmarked_old_paragraphs() -> None:
    paragraphs, _ = parse_paragraphs(
        "1.  CONFIDENTIAL - ENTIRE TEXT.\n\n2.  ATTORNEY ESSA MOOSA SAYS"
    )
    assert [(p.number, p.classification) for p in paragraphs] == [(1, None), (2, None)]


@pytest.mark.parametrize(
    ("text", "signers"),
    [
        ('seriously."\nORDWAY\n\nNNNN', ["ORDWAY"]),
        ("in Vienna.\n\nORDWAY", ["ORDWAY"]),
        ("end of text.\nKEEGAN/SMITH\n", ["KEEGAN", "SMITH"]),
        ("end of text.\nVAN VOORST\n", ["VAN VOORST"]),
        ("limits of his approach. End comment.\nCreamer", ["Creamer"]),
        ("with mixed results. End Comment. NALAND", ["NALAND"]),
        ("the operational level. End Comment.\nSOBEL 2008-01-08", ["SOBEL"]),
        ('right away. WOHLAUER "', ["WOHLAUER"]),
        ("AYALDE\n======================CABLE ENDS============================\n", ["AYALDE"]),
        ("End Comment.\nThanks", []),
        ("rings true for South Africa in 2009. LA LIME", []),
        ("text.\nCONFIDENTIAL\n", []),
        # What follows the signer in real cables is skipped (FIELDS.md).
        ("Stop.\nSTEIGMAN\nCONFIDENTIAL\n", ["STEIGMAN"]),
        ("Stop.\nRICE\n\nCONFIDENTIAL\n\nPAGE 04 STATE 015113 211833Z\n\nNNNN", ["RICE"]),
        ("Stop.\nKISSINGER\nNOTE BY OC/T: NOT PASSED ABOVE ADDRESSEES.", ["KISSINGER"]),
        ("Stop.\nGILLESPIE##", ["GILLESPIE"]),
        (
            "Stop.\nMILLER\nDeclassified/Released US Department of State EO Systematic Review",
            ["MILLER"],
        ),
        ("we stop here.\nSecret\n", []),
        ("text.\n\nNNNN", []),
    ],
)
def test_split_signature(text: str, signers: list[str]) -> None:
    assert split_signature(text)[1] == signers


def test_a_run_of_blanks_after_the_last_word_costs_linear_time() -> None:
    # Issue 17: the old trailer pattern took 877 s on a 7 KB file with a run of blanks.
    text = "End Comment. NALAND" + " " * 200_000 + "x"
    assert split_signature(text)[1] == []
    assert split_signature("End Comment. NALAND" + " ." * 100_000)[1] == ["NALAND"]


def test_signature_is_removed_from_text() -> None:
    assert split_signature("last paragraph.\nORDWAY\n\nNNNN") == ("last paragraph.", ["ORDWAY"])
    assert split_signature("End Comment. NALAND") == ("End Comment.", ["NALAND"])


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        (
            "1. (C) SUMMARY: The Dutch have no concerns. END SUMMARY.\n2. (C) more",
            "The Dutch have no concerns.",
        ),
        ("BEGIN SUMMARY \n \nGENERAL AZIMI ASKS. END SUMMARY \n", "GENERAL AZIMI ASKS."),
        ("Summary and Comment: Things moved. End Summary and Comment.", "Things moved."),
        ("Summary/Comment: Things moved. End Summary/Comment.", "Things moved."),
        ("SUMMARY AND ACTION REQUEST: Please act. END SUMMARY.", "Please act."),
        (
            "-------\nSummary\n-------\n1. (SBU) This is the third. End Summary.",
            "1. (SBU) This is the third.",
        ),
        # `Summary` over a `====` rule, no end marker: the paragraph under it.
        ("Summary\n=====\nThe talks failed.\n\nBackground\n=====\nMore.", "The talks failed."),
        (
            "------- SUMMARY -------\n\n1. (C) Summary: Burns met the TSD. End Summary.",
            "Burns met the TSD.",
        ),
        (
            "SUMMARY: CREATION OF PARTY ANNOUNCED. END\nSUMMARY.\n\n1.",
            "CREATION OF PARTY ANNOUNCED.",
        ),
        # END SUMMARY in any spacing, with or without a period, in brackets.
        ("SUMMARY: It held. (END  SUMMARY)\n2. Next", "It held."),
        ("SUMMARY: It held. -- end summary --", "It held."),
        # An opener with no end marker still gives a summary: to the end of its paragraph
        # (0085_d394abb6ea06a684.html).
        ("1. (C) Summary: no end marker here.\n\n2. (C) Next.", "no end marker here."),
        ("1. (C) Summary: no end marker here.\n2. (C) Next.", "no end marker here."),
        # END SUMMARY without an opener: from the first paragraph (0178_773e6db840294927.txt).
        (
            "SUBJECT: X\n\n1. (U) The mission met. Talks went well. END SUMMARY.\n\n2. (U) More.",
            "The mission met. Talks went well.",
        ),
        # A subject that holds the word is no opener.
        ("SUBJECT: FRAUD SUMMARY---HERMOSILLO\n\n1. Text.", None),
        ("no summary", None),
    ],
)
def test_parse_summary(text: str, summary: str | None) -> None:
    assert parse_summary(text) == summary


@pytest.mark.parametrize(
    "before",
    [
        # `İ` lowers to two characters (`i` and a combining dot): a lower-cased copy of the
        # text is longer than the text from there on, so its offsets are not the text's.
        "İSTANBUL " * 40,
        "İ" * 200 + "\n",
    ],
)
def test_summary_after_text_whose_lower_case_is_longer(before: str) -> None:
    text = f"{before}\n1. (C) SUMMARY: The talks held. END SUMMARY.\n\n2. (C) More."
    assert parse_summary(text) == "The talks held."
    # Only the end marker: the summary runs from the first paragraph's opening up to it.
    text = f"{before}\n1. (C) The talks held. END SUMMARY.\n\n2. (C) More."
    assert parse_summary(text) == "The talks held."
