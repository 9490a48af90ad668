"""The one verdict of a batch: the policy in force of each expectation, and the `fail`s that broke.

Pure (no GE import): the Data Docs action judges a run with it, validation routes by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cablestream.schemas.expectations import RULES, RULES_BY_NAME, Policy, Rule


@dataclass(frozen=True, slots=True)
class Judgement:
    """The policies in force of one run and what they decide: the one verdict of a batch."""

    policies: dict[str, Policy]
    failed: list[str]

    @property
    def verdict(self) -> str:
        return "failed" if self.failed else "passed"

    def policies_text(self) -> str:
        return "; ".join(
            f"{policy}: {', '.join(n for n, p in self.policies.items() if p == policy)}"
            for policy in ("fail", "drop", "warn")
            if policy in self.policies.values()
        )

    def as_meta(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "failed_expectations": list(self.failed),
            "policy_in_force": dict(self.policies),
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Judgement:
        return cls(policies=dict(meta["policy_in_force"]), failed=list(meta["failed_expectations"]))


def is_batch_rule(rule: Rule) -> bool:
    """A rule about the batch as a whole (a share or a mean), not about any one row.

    Such a rule names no row to take out, and a batch of real cables trips it as
    soon as arrival groups similar files (a share belongs to the batch, not to a
    cable): it flags the batch, and the rows are still written.
    """
    per_row = rule.expectation.startswith(
        ("ExpectColumnValues", "ExpectColumnValueLengths", "ExpectColumnPairValues")
    )
    return not per_row or "mostly" in rule.kwargs


def _raised(result: Any) -> bool:
    return bool((result.exception_info or {}).get("raised_exception"))


def judge(suite_result: Any, rows: int) -> Judgement:
    """The policy in force of every expectation of a GE run and the `fail`s that broke."""
    policies: dict[str, Policy] = {}
    broken: set[str] = set()
    for item in suite_result.results:
        name = item.expectation_config.meta["name"]
        raised = _raised(item)
        policies[name] = RULES_BY_NAME[name].policy_in_force(rows, raised)
        if raised or not item.success:
            broken.add(name)
    ordered = {rule.name: policies[rule.name] for rule in RULES if rule.name in policies}
    failed = [name for name, policy in ordered.items() if policy == "fail" and name in broken]
    return Judgement(policies=ordered, failed=failed)
