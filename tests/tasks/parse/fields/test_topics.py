import pytest

from cablestream.tasks.parse.fields.topics import parse_subject, parse_tags


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        (
            "E.O. 12958: DECL: 05/27/2023 TAGS: IAEA KNNP PREL AORC KZ SY",
            ["IAEA", "KNNP", "PREL", "AORC", "KZ", "SY"],
        ),
        ("TAGS: MASS, MARR, IR \nSUBJECT: ACCELERATION OF F-4ES FOR IRAN", ["MASS", "MARR", "IR"]),
        ("Tags: mtcre, parm, prel, ettc, mnuc", ["MTCRE", "PARM", "PREL", "ETTC", "MNUC"]),
        ("TAGS KDEM, PGOV, PREL, SF", ["KDEM", "PGOV", "PREL", "SF"]),
        ("E.o. 12958: decl: 2019/12/16 Tags: marr, mcap, ke", ["MARR", "MCAP", "KE"]),
        ("TAGS: PREL PGOV KZ SUBJECT: SHARED LINE", ["PREL", "PGOV", "KZ"]),
        ("TAGS: PREL PREL ZANU-PF", ["PREL", "ZANU-PF"]),
        # `TAG` in another header line is not a TAGS line.
        ("CORRECTED COPY - TAG\n\nTAGS: ECON EFIN", ["ECON", "EFIN"]),
        # Wrapped continuation lines of tag-shaped tokens belong to the list (FIELDS.md).
        (
            "TAGS: AF AS CA EI IC\nRO, SY, UK\nSUBJECT: X",
            ["AF", "AS", "CA", "EI", "IC", "RO", "SY", "UK"],
        ),
        (
            "TAGS: PTER PGOV PREL LE, SA\nQA, AE\nSUBJECT: X",
            ["PTER", "PGOV", "PREL", "LE", "SA", "QA", "AE"],
        ),
        # After a line that ends with a comma, the next line continues whatever it holds.
        ("TAGS: PREL, PGOV,\nKdem, Kz\nSUBJECT: X", ["PREL", "PGOV", "KDEM", "KZ"]),
        # Stops at prose, a record dump, a page header, a caveat, an addressee line.
        ("TAGS: PREL KZ\nThe Ambassador met the minister.", ["PREL", "KZ"]),
        ("TAGS: PREL KZ\nid: 67870\nPGOV", ["PREL", "KZ"]),
        ("TAGS: PREL\nSECRET PAGE 02 ROME 03067 211833Z", ["PREL"]),
        ("TAGS: PREL\nSENSITIVE\nSUBJECT: X", ["PREL"]),
        ("TAGS: PREL\nUSDOC FOR ITA\nSUBJECT: X", ["PREL"]),
        ("TAGS: PREL\n\nKZ", ["PREL"]),
        # 0444_23bbc5776d521531.txt: the LaTeX form, `<u>` already gone, no colon.
        (
            "EO 12958 DECL: 02/10/2019 TAGS PREL PGOV PTER ECON AF PK IN",
            ["PREL", "PGOV", "PTER", "ECON", "AF", "PK", "IN"],
        ),
        # Label variants: `TAG:`, lower case, misspellings seen in real cables.
        ("TAG: PREL KZ", ["PREL", "KZ"]),
        ("tags: prel kz", ["PREL", "KZ"]),
        ("TAS: PREL KZ", ["PREL", "KZ"]),
        ("TGS: PREL KZ", ["PREL", "KZ"]),
        ("TAGES: PREL KZ", ["PREL", "KZ"]),
        # Person tags stay as their words; multi-word tags after a comma are one tag.
        ("TAGS: OVIP BIDEN JOSEPH PREL", ["OVIP", "BIDEN", "JOSEPH", "PREL"]),
        ("TAGS: PHUM, PREL, HUMAN RIGHTS", ["PHUM", "PREL", "HUMAN RIGHTS"]),
        # 3714_3fb022f7860e955b.html (corpus-bulk)
        (
            "TAGS PINR, KCRM, PGOV, EINV, ECON, KCOR, BU, Organized Crime",
            ["PINR", "KCRM", "PGOV", "EINV", "ECON", "KCOR", "BU", "ORGANIZED CRIME"],
        ),
        ("TAGS: PREL PGOV, KZ", ["PREL", "PGOV", "KZ"]),
        ("no tags here", []),
    ],
)
def test_parse_tags(text: str, tags: list[str]) -> None:
    assert parse_tags(text) == tags


@pytest.mark.parametrize(
    ("text", "double_spaced", "subject"),
    [
        (
            "SUBJECT: KAZAKHSTAN: CANWFZ TREATY\n\nREF: STATE 109258",
            False,
            "KAZAKHSTAN: CANWFZ TREATY",
        ),
        # Wrapped over two lines.
        (
            "SUBJECT: WAITING AND WATCHING: NORTH KOREA AFTER CURRENCY\nREFORM\n\nREF: 09 X 167",
            False,
            "WAITING AND WATCHING: NORTH KOREA AFTER CURRENCY REFORM",
        ),
        # A blank line inside the wrap, where the line visibly continues (`… BOARD OF`).
        (
            "SUBJECT: KAZAKHSTAN: DEMARCHE DELIVERED ON IAEA BOARD OF\n\nGOVERNORS' MESA SEAT\n\nREF: STATE 55259",
            True,
            "KAZAKHSTAN: DEMARCHE DELIVERED ON IAEA BOARD OF GOVERNORS' MESA SEAT",
        ),
        (
            "SUBJ:  ESSA MOOSA TALKS ABOUT MANDELA AND OTHER TOPICS \n \n1.  CONFIDENTIAL - ENTIRE TEXT.",
            False,
            "ESSA MOOSA TALKS ABOUT MANDELA AND OTHER TOPICS",
        ),
        (
            "Subject: german test chamber sold by chinese subsidiary to\niran's dio (s)\n\nClassified By: X",
            False,
            "german test chamber sold by chinese subsidiary to iran's dio (s)",
        ),
        (
            "SUBJECT: (C) SPAIN'S RELATIONSHIP WITH CUBA\n",
            False,
            "(C) SPAIN'S RELATIONSHIP WITH CUBA",
        ),
        # An upper-case subject does not swallow the mixed-case line after it.
        ("SUBJECT: FOO BAR\nThis is an action request.\n", False, "FOO BAR"),
        ("SUBJECT:\n\n1. (C) Text", False, None),
        ("DEPT FOR EUR ON THE SUBJECT OF VISAS\nSUBJECT: VISA TALKS\n", False, "VISA TALKS"),
        ("no subject", False, None),
    ],
)
def test_parse_subject(text: str, double_spaced: bool, subject: str | None) -> None:
    assert parse_subject(text, double_spaced=double_spaced) == subject


@pytest.mark.parametrize(
    "text",
    [
        # 0840_4a83e47b4bb3218c.txt (corpus-bulk), after normalisation put each label on its line.
        "SUBJECT:\nSUBJECT: AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST\n\nClassified By: X",
        "SUBJECT: SUBJECT: AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST\n",
        "SUBJ: AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST\n",
        "SUBJECT AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST\n",
        "UBJECT: AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST\n",
        "SUBJECT: AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST REF: STATE 12\n",
        "SUBJECT: AFGHANISTAN: A SNAPSHOT OF THE NORTHEASTREF: STATE 12\n",
        "SUBJECT: AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST\nClassified By: Amb. X for reasons 1.4 (b)",
        "SUBJECT: AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST Classified By: Amb. X",
        "SUBJECT: AFGHANISTAN: A SNAPSHOT OF THE\nNORTHEAST\n\nREF: STATE 12",
    ],
)
def test_subject_label_variants_and_stops(text: str) -> None:
    assert parse_subject(text, double_spaced=False) == "AFGHANISTAN: A SNAPSHOT OF THE NORTHEAST"
