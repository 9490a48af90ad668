"""Quality outputs of a validated batch: Parquet tables, Data Docs, a Prefect artifact.

lake/_quality/
  validations/part-<batch_id>-<ranat>.parquet  one row per expectation per validation run
  batches/part-<batch_id>-<ranat>.parquet      one row per validation run (counts, verdict)
  data_docs/                                    GE Data Docs (index.html, one page per run)
  ge_results/<ranat>-<batch_id>.json           capped GE results the Data Docs index is built from

Files are written under a dot-name and renamed, so readers never see half a
file (readers skip `.`/`_` names). A retried batch adds another run, with
its own `ran_at`, instead of replacing the earlier one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas.expectations import SUITE_NAME

if TYPE_CHECKING:  # pragma: no cover
    from cablestream.tasks.validate import ValidationOutcome

QUALITY_DIR = "_quality"
VALIDATIONS_DIR = "validations"
BATCHES_DIR = "batches"
DATA_DOCS_DIR = "data_docs"
GE_RESULTS_DIR = "ge_results"
# Validation results kept in the in-memory GE store (the Data Docs index lists these).
DOCS_RESULTS_KEPT = 50

VALIDATIONS_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("expectation", pa.string()),
        ("expectation_type", pa.string()),
        ("column", pa.string()),
        ("policy", pa.string()),
        ("success", pa.bool_()),
        ("element_count", pa.int64()),
        ("unexpected_count", pa.int64()),
        ("missing_count", pa.int64()),
        ("observed_value", pa.string()),
        ("sample_record_ids", pa.list_(pa.string())),
        ("exception", pa.string()),
        ("ran_at", pa.timestamp("ms", tz="UTC")),
    ]
)

BATCHES_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("ran_at", pa.timestamp("ms", tz="UTC")),
        ("rows_in", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_dropped", pa.int64()),
        ("batch_failed", pa.bool_()),
        ("failed_expectations", pa.list_(pa.string())),
        ("drop_reasons", pa.list_(pa.string())),
        ("validation_seconds", pa.float64()),
        ("data_docs_page", pa.string()),
    ]
)


def quality_dir(lake_root: Path) -> Path:
    return lake_root / QUALITY_DIR


def _stamp(outcome: ValidationOutcome) -> str:
    return outcome.ran_at.strftime("%Y%m%dT%H%M%S%fZ") if outcome.ran_at else "norun"


def _safe(batch_id: str) -> str:
    """A file-name-safe form of the batch id (ids are generated, but never trust a name)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in batch_id)
    if cleaned != batch_id or not cleaned:
        cleaned = f"{cleaned[:40]}-{hashlib.sha256(batch_id.encode()).hexdigest()[:8]}"
    return cleaned


def _write_atomic(table: pa.Table, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    temporary = directory / f".{name}.tmp"
    pq.write_table(table, temporary)
    temporary.replace(final)
    return final


def validations_table(outcome: ValidationOutcome) -> pa.Table:
    rows = [{key: row.get(key) for key in VALIDATIONS_SCHEMA.names} for row in outcome.results]
    return pa.Table.from_pylist(rows, schema=VALIDATIONS_SCHEMA)


def batch_row(outcome: ValidationOutcome, batch_id: str, docs_page: str | None) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "ran_at": outcome.ran_at,
        "rows_in": outcome.rows_in,
        "rows_accepted": 0 if outcome.held_back else outcome.accepted.num_rows,
        "rows_dropped": len(outcome.rejections),
        "batch_failed": outcome.failed,
        "failed_expectations": list(outcome.failed_expectations),
        "drop_reasons": [rejection.reason for rejection in outcome.rejections],
        "validation_seconds": outcome.seconds,
        "data_docs_page": docs_page,
    }


def summary_markdown(outcome: ValidationOutcome, batch_id: str) -> str:
    """The batch summary (the Prefect artifact's text)."""
    verdict = (
        f"**FAILED** ({', '.join(outcome.failed_expectations)}): "
        + ("batch held back" if outcome.held_back else "rows written, batch flagged")
        if outcome.failed
        else "passed"
    )
    lines = [
        f"# Validation of batch `{batch_id}`",
        "",
        f"- verdict: {verdict}",
        f"- rows in: {outcome.rows_in}",
        f"- rows accepted: {0 if outcome.held_back else outcome.accepted.num_rows}",
        f"- rows dropped to quarantine: {len(outcome.rejections)}",
        f"- validation time: {outcome.seconds:.3f} s",
        "",
    ]
    reasons = Counter(rejection.reason for rejection in outcome.rejections)
    if reasons:
        lines += ["| drop reason | rows |", "|---|---|"]
        lines += [f"| {reason} | {count} |" for reason, count in reasons.most_common()]
        lines.append("")
    unsuccessful = [row for row in outcome.results if not row["success"]]
    if unsuccessful:
        lines += ["| expectation | policy | unexpected | observed |", "|---|---|---|---|"]
        lines += [
            f"| {row['expectation']} | {row['policy']} | {row['unexpected_count']} "
            f"| {row['observed_value'] or ''} |"
            for row in unsuccessful
        ]
    return "\n".join(lines) + "\n"


def build_data_docs(outcome: ValidationOutcome, batch_id: str, lake_root: Path) -> str | None:
    """Render this run's GE Data Docs page into lake/_quality/data_docs; its path relative there.

    The CDN links of the pages are rewritten to shipped copies (see
    `localize_data_docs`), so they render styled offline.
    """
    if outcome.ge_result is None:
        return None
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from cablestream.tasks.validate import _engine

    engine = _engine()
    docs_dir = quality_dir(lake_root) / DATA_DOCS_DIR
    site = "lake-" + hashlib.sha256(str(docs_dir.resolve()).encode()).hexdigest()[:12]
    safe_id = _safe(batch_id)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=SUITE_NAME),
        run_id=RunIdentifier(run_name=safe_id, run_time=outcome.ran_at),
        batch_identifier=safe_id,
    )
    with engine.lock:
        context = engine.context
        if site not in engine.docs_sites:
            context.add_data_docs_site(
                site,
                {
                    "class_name": "SiteBuilder",
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir),
                    },
                },
            )
            engine.docs_sites[site] = str(docs_dir)
        _index_runs(engine, site, lake_root, key, outcome)
        context.build_data_docs(site_names=[site], resource_identifiers=[key])
    run_time = key.run_id.run_time.strftime("%Y%m%dT%H%M%S.%fZ")
    page = docs_dir / "validations" / SUITE_NAME / safe_id / run_time / f"{safe_id}.html"
    built = [docs_dir / "index.html", page, *(docs_dir / "expectations").glob("*.html")]
    localize_data_docs(docs_dir, [p for p in built if p.is_file()])
    return str(page.relative_to(docs_dir)) if page.is_file() else None


def _index_runs(
    engine: Any, site: str, lake_root: Path, key: Any, outcome: ValidationOutcome
) -> None:
    """Fill GE's (in-memory) results store with this lake's last runs, this one included.

    Each run's capped result is kept in `_quality/ge_results/`, so the Data Docs
    index lists runs of earlier processes too, and never runs of another lake.
    Results already loaded in this process are reused.
    """
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    results_dir = quality_dir(lake_root) / GE_RESULTS_DIR
    results_dir.mkdir(parents=True, exist_ok=True)
    name = f"{_stamp(outcome)}-{key.batch_identifier}.json"
    document = {
        "run_name": key.run_id.run_name,
        "run_time": key.run_id.run_time.isoformat(),
        "batch_identifier": key.batch_identifier,
        "result": outcome.ge_result.to_json_dict(),
    }
    temporary = results_dir / f".{name}.tmp"
    temporary.write_text(json.dumps(document, default=str), encoding="utf-8")
    temporary.replace(results_dir / name)

    cache: dict[str, tuple[Any, Any]] = engine.docs_results.setdefault(site, {})
    cache[name] = (key, outcome.ge_result)
    wanted = sorted(p.name for p in results_dir.glob("*.json"))[-DOCS_RESULTS_KEPT:]
    for wanted_name in wanted:
        if wanted_name in cache:
            continue
        try:
            loaded = json.loads((results_dir / wanted_name).read_text(encoding="utf-8"))
            run_key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=SUITE_NAME),
                run_id=RunIdentifier(
                    run_name=loaded["run_name"],
                    run_time=datetime.fromisoformat(loaded["run_time"]),
                ),
                batch_identifier=loaded["batch_identifier"],
            )
            cache[wanted_name] = (
                run_key,
                expectationSuiteValidationResultSchema.load(loaded["result"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable old run only leaves the index shorter
    for stale in set(cache) - set(wanted):
        del cache[stale]
    store = engine.context.validation_results_store
    for old_key in list(store.list_keys()):
        store.remove_key(old_key)
    for run_key, result in cache.values():
        store.set(run_key, result)


# Data Docs pages load their styles and scripts from CDNs, so offline they render
# unstyled and the index's run list (built by bootstrap-table) stays empty. The
# assets they need are shipped in `datadocs_assets/` (from the npm registry, MIT
# / OFL licensed, see its licenses/) and the links are rewritten to that copy.
ASSETS_DIR = Path(__file__).resolve().parent / "datadocs_assets"
VENDOR_DIR = "static/vendor"
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "js/jquery-3.7.1.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "js/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "css/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "js/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": "css/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": "css/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": "js/bootstrap-table-filter-control.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "css/fontawesome-all.min.css"
    ),
}
# Not shipped: the dark-mode theme (880 kB) and vega (charts only profiling pages draw).
_DROPPED_TAGS = re.compile(
    r"<link[^>]*bootstrap-prefers-dark\.css[^>]*>"
    r'|<script[^>]*src="https://cdn\.jsdelivr\.net/npm/vega[^"]*"[^>]*>\s*</script>'
)
_SRI_ATTRIBUTES = re.compile(r'\s(?:integrity|crossorigin)="[^"]*"')
_GE_IMAGES = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
    r"(?:logo-long\.png|full_logo_dark\.png)(?:\?[^\"')]*)?"
)


def localize_data_docs(docs_dir: Path, pages: list[Path]) -> None:
    """Point `pages` at the shipped copies of their CDN assets (copied once into the site)."""
    vendor = docs_dir / VENDOR_DIR
    if not (vendor / "css" / "bootstrap.min.css").is_file():
        shutil.copytree(ASSETS_DIR, vendor, dirs_exist_ok=True)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        prefix = Path(os.path.relpath(docs_dir, page.parent)).as_posix()
        for url, local in CDN_ASSETS.items():
            text = text.replace(url, f"{prefix}/{VENDOR_DIR}/{local}")
        text = _DROPPED_TAGS.sub("", text)
        # Subresource-integrity / CORS attributes make file:// loads fail.
        text = _SRI_ATTRIBUTES.sub("", text)
        text = _GE_IMAGES.sub(f"{prefix}/static/images/logo-long.png", text)
        page.write_text(text, encoding="utf-8")


def publish_artifact(markdown: str, batch_id: str) -> bool:
    """A Prefect markdown artifact, when called inside a Prefect flow or task run."""
    import sys

    if "prefect" not in sys.modules:  # not running under Prefect: never import it here
        return False
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return False
    create_markdown_artifact(
        markdown=markdown,
        key="cable-batch-quality",
        description=f"Validation of batch {batch_id}",
    )
    return True


def record_batch_quality(outcome: ValidationOutcome, batch_id: str, lake_root: Path) -> None:
    """Write every quality output of one validated batch."""
    if outcome.ran_at is None:
        return
    quality = quality_dir(lake_root)
    name = f"part-{_safe(batch_id)}-{_stamp(outcome)}.parquet"
    docs_page = build_data_docs(outcome, batch_id, lake_root)
    if outcome.results:
        _write_atomic(validations_table(outcome), quality / VALIDATIONS_DIR, name)
    batches = pa.Table.from_pylist([batch_row(outcome, batch_id, docs_page)], schema=BATCHES_SCHEMA)
    _write_atomic(batches, quality / BATCHES_DIR, name)
    publish_artifact(summary_markdown(outcome, batch_id), batch_id)


def read_quality_table(lake_root: Path, which: str) -> pa.Table | None:
    """All runs of `validations` or `batches`, or None when nothing was recorded yet."""
    directory = quality_dir(lake_root) / which
    files = sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        return None
    schema = VALIDATIONS_SCHEMA if which == VALIDATIONS_DIR else BATCHES_SCHEMA
    return pa.concat_tables(pq.read_table(path, schema=schema) for path in files)
