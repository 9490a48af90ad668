"""The expectation suite of a cable batch, as code, with a policy beside every expectation.

Each `Rule` names one Great Expectations 1.x expectation (by class name and
keyword arguments) and the policy that decides what a failure means, as Delta
Live Tables expectations do:

- `warn`: the row is kept and the failure is counted in the quality tables (a row
  rule's name is added to the row's `quality_flags`);
- `drop`: the failing rows go to the quarantine with the rule's name as reason;
- `fail`: the whole batch is kept out of the lake (retried, then quarantined).

Which policy a rule gets: `drop` only for a row that is not a cable, or not a
distinct one (no text at all; a record_id two rows claim); a check that a real
cable the parser read badly breaks (an odd reference id, a misread date, a
swallowed subject) is a `warn`, so the cable is kept and flagged, never kept out of
the lake; `fail` for a broken flow (provenance) or a parser regression over the
whole batch. Each rule's description says why it has its policy.

The rules are plain data, so reading policies (the report, the quality
tables) never imports great_expectations; `build_suite()` turns them into a
`gx.ExpectationSuite` and is only called where validation runs.

Every expectation reads a column of the lake under its own name (Data Docs
show only the lake's columns). GE checks scalar values, so
`cablestream.tasks.quality.frame` hands it list columns as their elements joined
by `|` (`tags`: `PREL|KZ`; `recipients`: the routing indicators), checked
with one regex that must hold for every element, and the date
`nondisclosure_deadline` as a UTC timestamp (comparable with `created`).
Whether a reference id is already in the lake is a suite parameter
(`reference_ids_in_lake`), filled per run from the lake's partitions.

The suite is exported to `expectation_suite.json` beside this file; a test
fails when code and export drift. Regenerate with
`python -m cablestream.schemas.expectations`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import great_expectations as gx

Policy = Literal["warn", "drop", "fail"]
POLICIES: tuple[Policy, ...] = ("warn", "drop", "fail")

SUITE_NAME = "cable_batch"
SUITE_JSON = Path(__file__).resolve().with_name("expectation_suite.json")

# Years in which cables of the release were written (the oldest are from 1966).
CREATED_MIN_YEAR = 1960
CREATED_MAX_YEAR = 2011

CLASSIFICATIONS: tuple[str, ...] = (
    "UNCLASSIFIED",
    "UNCLASSIFIED//FOR OFFICIAL USE ONLY",
    "LIMITED OFFICIAL USE",
    "LIMITED OFFICIAL USE//NOFORN",
    "CONFIDENTIAL",
    "CONFIDENTIAL//NOFORN",
    "SECRET",
    "SECRET//NOFORN",
    "TOP SECRET",
)
PRECEDENCES: tuple[str, ...] = (
    "FLASH",
    "NIACT IMMEDIATE",
    "IMMEDIATE",
    "PRIORITY",
    "ROUTINE",
    "DEFERRED",
)
CAVEATS: tuple[str, ...] = (
    "SIPDIS",
    "STPDTS",
    "NOFORN",
    "NOCONTRACT",
    "ORCON",
    "PROPIN",
    "EXDIS",
    "EFTO",
    "NODIS",
    "LIMDIS",
    "STADIS",
    "ROGER",
    "CHEROKEE",
    "SENSITIVE",
    "SBU",
    "OADR",
    "GDS",
    "NGDS",
    "XGDS",
    "XGDS-1",
    "XGDS-2",
    "XGDS-3",
    "XGDS-4",
    "X1",
    "X2",
    "X3",
    "X4",
    "X5",
    "X6",
    "X7",
    "X8",
    "MR",
    "25X1",
)

# Separator of list elements as GE sees them (never part of a valid element).
JOIN_SEPARATOR = "|"
# Suite parameter: reference ids of the batch that accepted rows in the lake already carry.
LAKE_REFERENCE_IDS = "reference_ids_in_lake"


def _every_element(element: str) -> str:
    """A regex matching a `|`-joined list whose every element matches `element` (or empty)."""
    return rf"^(?:(?:{element})(?:\|(?:{element}))*)?$"


REFERENCE_ID_REGEX = r"^[0-9]{2}[A-Z0-9]*[A-Z][0-9]+$"  # 08ASTANA988, 75LIBREVILLE1895
SHA256_REGEX = r"^[0-9a-f]{64}$"
TRANSMISSION_ID_REGEX = r"^VZCZC[A-Z0-9]+$"
ROUTE_REGEX = r"R[A-Z0-9]{3,7}"  # RUEHC, RUEKJCS, RHMFISS
TAG_REGEX = r"[A-Z][A-Z0-9_-]{1,24}"  # PREL, KNNP, IR, OVIP
REASON_REGEX = r"1\.[4-5]\([a-h]\)"  # 1.4(b), 1.5(d)
CAVEAT_REGEX = "|".join(re.escape(caveat) for caveat in CAVEATS)


@dataclass(frozen=True, slots=True)
class Rule:
    """One expectation of the suite and its policy."""

    name: str  # stable; the quarantine reason of a `drop` rule
    expectation: str  # class name in `great_expectations.expectations`
    kwargs: Mapping[str, Any]
    policy: Policy
    description: str
    # Batch-level rules: below this many rows the batch says too little, and a
    # `fail` is in force as `warn` (one cable without subject is not a regression).
    min_rows: int = 0

    @property
    def column(self) -> str:
        """The lake column(s) the rule reads."""
        if "column" in self.kwargs:
            return str(self.kwargs["column"])
        return ",".join(str(self.kwargs[key]) for key in ("column_A", "column_B"))

    def policy_in_force(self, rows: int, raised: bool = False) -> Policy:
        """The policy that decides this run: an expectation that raised says nothing, so it
        keeps the batch out (`fail`); a batch-level `fail` below `min_rows` is only a `warn`."""
        if raised:
            return "fail"
        if self.policy == "fail" and rows < self.min_rows:
            return "warn"
        return self.policy


def _rule(
    name: str,
    expectation: str,
    policy: Policy,
    description: str,
    *,
    min_rows: int = 0,
    **kwargs: Any,
) -> Rule:
    return Rule(
        name=name,
        expectation=expectation,
        kwargs=kwargs,
        policy=policy,
        description=description,
        min_rows=min_rows,
    )


NOT_NULL = "ExpectColumnValuesToNotBeNull"
REGEX = "ExpectColumnValuesToMatchRegex"
IN_SET = "ExpectColumnValuesToBeInSet"
BETWEEN = "ExpectColumnValuesToBeBetween"

RULES: tuple[Rule, ...] = (
    # --- identity and provenance --------------------------------------------------------
    _rule(
        "record_id_unique",
        "ExpectColumnValuesToBeUnique",
        "drop",
        "record_id is the row's identity (a hash of its source and place in it): two rows of"
        " one batch claiming one are not distinct cables and neither can be trusted, so both"
        " go to quarantine.",
        column="record_id",
    ),
    _rule(
        "record_id_sha256",
        REGEX,
        "warn",
        "record_id is a sha256 hex digest.",
        column="record_id",
        regex=SHA256_REGEX,
    ),
    _rule(
        "reference_id_not_null",
        NOT_NULL,
        "warn",
        "An undated cable has no reference id (its year is unknown): kept in year=0/month=0.",
        column="reference_id",
    ),
    _rule(
        "reference_id_format",
        REGEX,
        "warn",
        "2-digit year + station + serial without leading zeros (08ASTANA988). An id in another"
        " form is a parser weakness on a real cable: kept and flagged, not dropped.",
        column="reference_id",
        regex=REFERENCE_ID_REGEX,
    ),
    _rule(
        "reference_id_unique_in_batch",
        "ExpectColumnValuesToBeUnique",
        "warn",
        "A second rendering of a cable in the same batch is reported, not merged.",
        column="reference_id",
    ),
    _rule(
        "reference_id_new_to_lake",
        "ExpectColumnValuesToNotBeInSet",
        "warn",
        "A reference id already in the lake (another rendering) is reported, not merged.",
        column="reference_id",
        value_set={"$PARAMETER": LAKE_REFERENCE_IDS},
    ),
    _rule(
        "source_path_not_null",
        NOT_NULL,
        "fail",
        "Provenance is set by the reader: a null means the flow is broken.",
        column="source_path",
    ),
    _rule(
        "source_sha256_format",
        REGEX,
        "fail",
        "Provenance hash of the source file.",
        column="source_sha256",
        regex=SHA256_REGEX,
    ),
    _rule(
        "source_sha256_not_null",
        NOT_NULL,
        "fail",
        "Provenance hash of the source file is always set.",
        column="source_sha256",
    ),
    _rule(
        "rendering_not_null",
        NOT_NULL,
        "warn",
        "The detected input form is always named.",
        column="rendering",
    ),
    _rule(
        "parser_version_not_null",
        NOT_NULL,
        "fail",
        "Rows must say which parser made them.",
        column="parser_version",
    ),
    # --- header -------------------------------------------------------------------------
    _rule(
        "created_not_null",
        NOT_NULL,
        "warn",
        "A cable without any date lands in the sentinel partition year=0/month=0.",
        column="created",
    ),
    _rule(
        "created_year_in_range",
        BETWEEN,
        "warn",
        f"Cables of the release were written {CREATED_MIN_YEAR}..{CREATED_MAX_YEAR}. A date"
        " outside is a misread DTG or DECL of a real cable: kept (partitioned by that date)"
        " and flagged, not dropped.",
        column="created",
        min_value=datetime(CREATED_MIN_YEAR, 1, 1, tzinfo=UTC),
        max_value=datetime(CREATED_MAX_YEAR, 12, 31, 23, 59, 59, tzinfo=UTC),
    ),
    _rule(
        "nondisclosure_after_created",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        "warn",
        "The declassification date lies after the cable was written.",
        column_A="nondisclosure_deadline",
        column_B="created",
        or_equal=False,
        ignore_row_if="either_value_is_missing",
    ),
    _rule(
        "precedence_in_set",
        IN_SET,
        "warn",
        "Known precedence prosigns.",
        column="precedence",
        value_set=list(PRECEDENCES),
    ),
    _rule(
        "transmission_id_format",
        REGEX,
        "warn",
        "VZCZC transmission identifier.",
        column="transmission_id",
        regex=TRANSMISSION_ID_REGEX,
    ),
    _rule(
        "origin_not_null",
        NOT_NULL,
        "warn",
        "The FM line names the sender.",
        column="origin",
    ),
    _rule(
        "station_format",
        REGEX,
        "warn",
        "The sending post as reference ids spell it: upper-case letters only.",
        column="station",
        regex=r"^[A-Z]+$",
    ),
    _rule(
        "routing_indicators_format",
        REGEX,
        "warn",
        "Every TO routing indicator looks like RUEHC.",
        column="recipients",
        regex=_every_element(ROUTE_REGEX),
    ),
    _rule(
        "info_routing_indicators_format",
        REGEX,
        "warn",
        "Every INFO routing indicator looks like RUEHC.",
        column="info_recipients",
        regex=_every_element(ROUTE_REGEX),
    ),
    _rule(
        "classification_not_null",
        NOT_NULL,
        "warn",
        "Every cable carries a classification.",
        column="classification",
    ),
    _rule(
        "classification_in_set",
        IN_SET,
        "warn",
        "Normalized classification markings.",
        column="classification",
        value_set=list(CLASSIFICATIONS),
    ),
    _rule(
        "caveats_in_set",
        REGEX,
        "warn",
        "Every handling caveat is a known marker.",
        column="caveats",
        regex=_every_element(CAVEAT_REGEX),
    ),
    _rule(
        "tags_format",
        REGEX,
        "warn",
        "TAGS are upper-case tokens without markup.",
        column="tags",
        regex=_every_element(TAG_REGEX),
    ),
    _rule(
        "classification_reasons_format",
        REGEX,
        "warn",
        "Reason codes are normalized like 1.4(b).",
        column="classification_reasons",
        regex=_every_element(REASON_REGEX),
    ),
    # --- text ---------------------------------------------------------------------------
    _rule(
        "subject_length",
        "ExpectColumnValueLengthsToBeBetween",
        "warn",
        "A subject is never empty (missing is null) and never a swallowed body: a parser"
        " weakness, so the cable is kept and flagged, not dropped.",
        column="subject",
        min_value=1,
        max_value=600,
    ),
    _rule(
        "body_has_text",
        REGEX,
        "drop",
        "A cable is text: a row without any (empty or blank body) is not a cable, so it goes"
        " to quarantine.",
        column="body",
        regex=r"\S",
    ),
    _rule(
        "body_length",
        "ExpectColumnValueLengthsToBeBetween",
        "warn",
        "More than 2 M characters is a split failure (cables run together): a parser"
        " weakness, so the cable is kept and flagged, not dropped.",
        column="body",
        max_value=2_000_000,
    ),
    # --- batch level: a parser regression shows as a shift over the whole batch ----------
    _rule(
        "batch_subject_share",
        NOT_NULL,
        "fail",
        "At least half the cables of a batch have a subject.",
        min_rows=10,
        column="subject",
        mostly=0.5,
    ),
    _rule(
        "batch_parse_warning_share",
        REGEX,
        "fail",
        "At most 60% of the cables of a batch carry parse warnings (at least 40% carry none).",
        min_rows=10,
        column="parse_warnings",
        regex="^$",
        mostly=0.4,
    ),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


def suite_columns() -> list[str]:
    """Every lake column the suite reads (record_id first: it names unexpected rows)."""
    columns: list[str] = ["record_id"]
    for rule in RULES:
        for key in ("column", "column_A", "column_B"):
            value = rule.kwargs.get(key)
            if isinstance(value, str) and value not in columns:
                columns.append(value)
    return columns


def build_suite() -> gx.ExpectationSuite:
    """The GE suite of `RULES`; the rule name and policy travel in each expectation's meta."""
    import great_expectations as gx

    expectations = []
    for rule in RULES:
        cls = getattr(gx.expectations, rule.expectation)
        meta = {
            "name": rule.name,
            "policy": rule.policy,
            "min_rows": rule.min_rows,
            "description": rule.description,
        }
        expectations.append(cls(**dict(rule.kwargs), meta=meta))
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


def suite_to_json(suite: gx.ExpectationSuite) -> dict[str, Any]:
    """A stable JSON form of the suite: GE's own export without the random ids."""
    exported: dict[str, Any] = json.loads(json.dumps(suite.to_json_dict(), default=str))
    exported.pop("id", None)
    for expectation in exported.get("expectations", []):
        expectation.pop("id", None)
    return exported


def render_suite_json() -> str:
    return json.dumps(suite_to_json(build_suite()), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SUITE_JSON.write_text(render_suite_json(), encoding="utf-8")
    print(f"wrote {SUITE_JSON}")


if __name__ == "__main__":
    main()
