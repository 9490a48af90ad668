import pytest

from cablestream.tasks.parse.fields.classified_by import parse_classified_by


@pytest.mark.parametrize(
    ("text", "authority", "reasons"),
    [
        (
            "Classified By: Pol-Econ Chief Steven Fagin, Reasons 1.4 (b) and (d)",
            "Pol-Econ Chief Steven Fagin",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Ambassador John Ordway, reasons 1.4 (B) and (D).",
            "Ambassador John Ordway",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: ISN/MTR DIRECTOR PAM DURHAM FOR REASONS\n1.4 (b), (c), and (d).",
            "ISN/MTR DIRECTOR PAM DURHAM",
            ["1.4(b)", "1.4(c)", "1.4(d)"],
        ),
        (
            "Classified By: A/CG Ben Wohlauer for Reasons 1.4 (b, d)",
            "A/CG Ben Wohlauer",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "CLASSIFIED BY: DCM JOHN SMITH. REASON: 1.5 (B,D)",
            "DCM JOHN SMITH",
            ["1.5(b)", "1.5(d)"],
        ),
        (
            "Classified By: Consul General Stephen B. Wickman. For \nReasons 1.4 (b) and (d) \n\n1. (S/NF) SUMMARY",
            "Consul General Stephen B. Wickman",
            ["1.4(b)", "1.4(d)"],
        ),
        ("1. (C) Classified by Ambassador Ford for reason 1.4 (d).", "Ambassador Ford", ["1.4(d)"]),
        # FIELDS.md: mid-line after a sentence, a doubled label, reasons written `1,4`.
        (
            "1. CONFIDENTIAL - ENTIRE TEXT. CLASSIFIED BY AMBASSADOR SMITH, REASONS 1.5 (B) AND (D).",
            "AMBASSADOR SMITH",
            ["1.5(b)", "1.5(d)"],
        ),
        (
            "Classified By: Classified by Pol/Econ Officer Ann Lee for reasons 1.4 (b)",
            "Pol/Econ Officer Ann Lee",
            ["1.4(b)"],
        ),
        (
            "Classified By: Ambassador Ann Lee, Reasons 1,4 (b) and (d)",
            "Ambassador Ann Lee",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Deputy Chief of Mission Edwin R. Nolan for reasons 1.4 ( b) and (d)",
            "Deputy Chief of Mission Edwin R. Nolan",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Political Counselor Richard Mills, reasons 1.4 (b/d).",
            "Political Counselor Richard Mills",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Classified by Pol/Econ Officer Cari Enav for reasons 1.4\n(a) (b) and (d)\n\nSummary",
            "Pol/Econ Officer Cari Enav",
            ["1.4(a)", "1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: A/DCM Barbara Leaf for reasons 1.4b and d",
            "A/DCM Barbara Leaf",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Ambassador Frank E. Baxter\nfor reasons 1.4 (B) and (D)\n\n1. (C) On May 14",
            "Ambassador Frank E. Baxter",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Charge d'Affaires Christopher J. McMullen for reasons 1.\n4 (b) & (d)\n\n\nSUMMARY",
            "Charge d'Affaires Christopher J. McMullen",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Counselor Walter Pflaumer for reasons 1.4. (b\n& d).\n\n1. (C) SUMMARY.",
            "Counselor Walter Pflaumer",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Ambassador Robert F. Godec for\nE.O. 12958 reasons 1.4 (b ) and (d).\n\n-------",
            "Ambassador Robert F. Godec",
            ["1.4(b)", "1.4(d)"],
        ),
        (
            "Classified By: Charge Robert P. Jackson for reasons 1\n.4 (b) and (d).\n",
            "Charge Robert P. Jackson",
            ["1.4(b)", "1.4(d)"],
        ),
        ("no authority here", None, []),
    ],
)
def test_parse_classified_by(text: str, authority: str | None, reasons: list[str]) -> None:
    assert parse_classified_by(text) == (authority, reasons)


@pytest.mark.parametrize(
    ("text", "authority"),
    [
        # The word first in the serial line and in prose: the label is on a later line.
        (
            "UNCLASSIFIED ROME 000123\n\nThe classified annex follows.\n"
            "1. (C) Classified By: DCM Ann Lee, reasons 1.4 (b)",
            "DCM Ann Lee",
        ),
        # Mid-line after a sentence, far into a long line.
        (
            "3. "
            + "x" * 80
            + ". CONFIDENTIAL - ENTIRE TEXT. CLASSIFIED BY: POLOFF J. DOE, 1.4 (d)",
            "POLOFF J. DOE",
        ),
        # After the word's first plain spelling, a label in any spelling.
        ("Not classified.\nCLassified bY: Consul Mary Roe, reasons 1.4 (b)", "Consul Mary Roe"),
        # More than a label's opening before the word: no label at the line start.
        ("1. " + " " * 60 + "Classified By: nobody", None),
    ],
)
def test_classified_by_is_found_on_the_line_of_its_word(text: str, authority: str | None) -> None:
    assert parse_classified_by(text)[0] == authority
