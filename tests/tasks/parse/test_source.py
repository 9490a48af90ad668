import gzip
from pathlib import Path

from cablestream.schemas.record import CableRecord, NoCable
from cablestream.tasks.parse import guard
from cablestream.tasks.parse.source import (
    PARSE_BUDGET_BASE_S,
    ByteOffsets,
    parse_budget_s,
    parse_source,
    record_id_for,
)

SEED = Path(__file__).resolve().parents[4] / "shared" / "seeds" / "000_1fc624bd0934a77e.txt"
CABLE = b"O 270710Z MAY 08\nFM AMEMBASSY ASTANA\n\nSECRET ASTANA 000988\n\nSUBJECT: ONE\n\n1. (S) Text.\nNNNN\n"


def test_several_cables_in_one_file_get_offsets_and_stable_ids() -> None:
    data = CABLE + CABLE.replace(b"000988", b"000989")
    results = parse_source(data, "inbox/two.txt")
    assert all(isinstance(result, CableRecord) for result in results)
    records = [r for r in results if isinstance(r, CableRecord)]
    assert [r.reference_id for r in records] == ["08ASTANA988", "08ASTANA989"]
    assert [r.source_offset for r in records] == [0, len(CABLE)]
    assert records[0].record_id == record_id_for(records[0].source_sha256, 0)
    assert records[0].record_id != records[1].record_id
    assert parse_source(data, "elsewhere.txt")[0].record_id == records[0].record_id  # type: ignore[union-attr]


def test_byte_offsets_count_bytes_not_characters() -> None:
    first = "O 270710Z MAY 08\nSUBJECT: CAFÉ ’QUOTES’\nSECRET ASTANA 000001\nNNNN\n".encode()
    records = parse_source(first + CABLE, "x.txt")
    assert records[1].source_offset == len(first)


def test_gzip_source() -> None:
    records = parse_source(gzip.compress(CABLE), "x.txt.gz")
    assert isinstance(records[0], CableRecord)
    assert records[0].reference_id == "08ASTANA988"
    assert records[0].parse_warnings == []


def test_no_cable_and_unreadable_sources() -> None:
    assert parse_source(b"just some words", "a.txt")[0] == NoCable(
        "no_cable",
        "no classification line, header or cable fields found",
        "a.txt",
        parse_source(b"just some words", "a.txt")[0].source_sha256,
        0,
    )
    assert isinstance(parse_source(b"", "e.txt")[0], NoCable)
    assert parse_source(b"\x00\x01", "b.bin")[0].reason == "binary"  # type: ignore[union-attr]


def test_byte_offsets_in_and_out_of_order() -> None:
    offsets = ByteOffsets("a’b’c")  # ’ is three bytes in UTF-8
    assert [offsets(0), offsets(2), offsets(4), offsets(1)] == [0, 4, 8, 1]


def test_a_parse_past_its_budget_is_a_file_level_parse_timeout() -> None:
    """The budget is the last guard: a parse that runs out of it never hangs or raises."""
    with guard.time_budget(0.0):
        results = parse_source(CABLE + CABLE, "slow.txt")
    assert len(results) == 1
    assert isinstance(results[0], NoCable)
    assert (results[0].reason, results[0].source_path) == ("parse_timeout", "slow.txt")
    assert "budget" in results[0].detail
    # Outside the spent budget the same bytes parse normally.
    assert all(isinstance(result, CableRecord) for result in parse_source(CABLE, "slow.txt"))


def test_the_budget_grows_with_the_text() -> None:
    assert parse_budget_s(0) == PARSE_BUDGET_BASE_S
    assert parse_budget_s(10_000_000) > parse_budget_s(1_000_000) > parse_budget_s(0)
