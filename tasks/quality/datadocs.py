"""GE Data Docs of a lake, built by GE's own checkpoint and actions.

Each batch is validated by a GE `Checkpoint` whose one action,
`LakeBatchAction`, is GE's `UpdateDataDocsAction` with three steps in front:

1. it applies the policies (`verdict.judge`): the policy in force of
   every expectation for this run (a batch-level `fail` below its `min_rows`
   is a `warn`) goes into the expectation's meta, and the run's `success`
   becomes the batch verdict (passed = no `fail` in force broke; each
   expectation keeps its own success). This is the one place a verdict is
   decided: routing, the quality tables, the Prefect artifact and the
   dashboard read it from the run's meta (`VERDICT_META`);
2. it names the real asset (the lake and the batch id) in the run's batch spec,
   which the pages show as "Data asset";
3. it keeps a capped copy of the run in `quality/ge_results/` and fills GE's
   in-memory results store with the lake's last runs (the context is
   ephemeral), so the index lists earlier processes' runs and never another
   lake's.

Then GE renders the run page and the index. The pages' CDN links are
rewritten to shipped copies (`localize_data_docs`) so they render offline.

This module imports great_expectations at import time: import it lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from great_expectations.checkpoint.actions import UpdateDataDocsAction
from great_expectations.checkpoint.checkpoint import CheckpointResult
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
    expectationSuiteValidationResultSchema,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.store.validation_results_store import ValidationResultsStore
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from cablestream.schemas.expectations import SUITE_NAME
from cablestream.tasks.lake.atomic import write_atomic
from cablestream.tasks.quality.verdict import judge

# Where the run's verdict lives in its meta (and so in every stored copy).
VERDICT_META = "cablestream"
# Validation results kept in the in-memory GE store (the Data Docs index lists these).
DOCS_RESULTS_KEPT = 50
# Ids and values kept per expectation in what is stored and rendered.
SAMPLE_SIZE = 20
# Longest value kept in a stored sample (a failing `body` can be megabytes).
SAMPLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class DocsPlace:
    """Where a lake's Data Docs and kept GE results live."""

    docs_dir: Path
    results_dir: Path

    @property
    def site_name(self) -> str:
        return "lake-" + hashlib.sha256(str(self.docs_dir).encode()).hexdigest()[:12]


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SAMPLE_CHARS:
        return value[: SAMPLE_CHARS - 3] + "..."
    if isinstance(value, dict):
        return {key: _short(item) for key, item in value.items()}
    return value


def _capped(result: dict[str, Any]) -> dict[str, Any]:
    """A copy of one expectation's result with COMPLETE's unbounded lists cut short."""
    capped = dict(result)
    for key in ("unexpected_list", "unexpected_index_list", "partial_unexpected_counts"):
        value = capped.get(key)
        if isinstance(value, list):
            capped[key] = [_short(item) for item in value[:SAMPLE_SIZE]]
    for key in ("partial_unexpected_list", "partial_unexpected_index_list"):
        value = capped.get(key)
        if isinstance(value, list):
            capped[key] = [_short(item) for item in value]
    return capped


def capped_copy(result: ExpectationSuiteValidationResult) -> ExpectationSuiteValidationResult:
    """The run as stored and rendered: same verdict and counts, sample lists capped."""
    return ExpectationSuiteValidationResult(
        success=result.success,
        results=[
            ExpectationValidationResult(
                success=item.success,
                expectation_config=item.expectation_config,
                result=_capped(item.result) if isinstance(item.result, dict) else item.result,
                meta=item.meta,
                exception_info=item.exception_info,
            )
            for item in result.results
        ],
        suite_name=result.suite_name,
        suite_parameters=result.suite_parameters,
        statistics=result.statistics,
        meta=result.meta,
        batch_id=result.batch_id,
    )


class RunsKeptByTheAction(ValidationResultsStore):  # type: ignore[misc]
    """The engine's GE results store: it holds the runs `LakeBatchAction` sets (capped
    copies). GE itself stores each run first, in full (COMPLETE: every unexpected row,
    serialized as JSON), only for the action to replace it: about a tenth of a batch's
    validation CPU, so that store is skipped."""

    def store_validation_results(self, *args: Any, **kwargs: Any) -> bool:
        return True


class LakeBatchAction(UpdateDataDocsAction):  # type: ignore[misc]
    """Judge the run by its policies, name the lake's batch, keep the run, then build the docs.

    With `index` False only the run's own page is rendered: an ingest pass builds the
    index and the expectations page once, at its end (`build_index`), not per group.
    """

    type: Literal["cablestream_lake_batch"] = "cablestream_lake_batch"  # type: ignore[assignment]
    lake: str
    batch_id: str
    rows: int
    docs_dir: str
    results_dir: str
    index: bool = True

    def run(
        self, checkpoint_result: CheckpointResult, action_context: Any = None
    ) -> dict[Any, Any]:
        store = self._data_context.validation_results_store
        for key, run in checkpoint_result.run_results.items():
            result: Any = run  # its meta is typed for GE's own keys only
            judgement = judge(result, self.rows)
            for item in result.results:
                meta = item.expectation_config.meta
                meta["policy_in_force"] = judgement.policies.get(meta.get("name"))
            result.success = not judgement.failed
            result.meta[VERDICT_META] = judgement.as_meta()
            result.meta["batch_spec"] = {
                "data_asset_name": f"{self.lake} batch {self.batch_id}",
                "lake": self.lake,
                "batch_id": self.batch_id,
                "rows": self.rows,
                "verdict": judgement.verdict,
                "policies_in_force": judgement.policies_text(),
            }
            kept = capped_copy(result)
            _keep_run(Path(self.results_dir), key, kept)
            _fill_store(store, Path(self.results_dir), key, kept, all_kept=self.index)
        docs_dir = Path(self.docs_dir)
        pages = [run_page(docs_dir, key) for key in checkpoint_result.run_results]
        if not self.index:
            self._data_context.build_data_docs(
                site_names=self.site_names,
                resource_identifiers=list(checkpoint_result.run_results),
                build_index=False,
            )
            localize_data_docs(docs_dir, [page for page in pages if page.is_file()])
            return {}
        built: dict[Any, Any] = super().run(checkpoint_result, action_context)
        pages += [docs_dir / "index.html", *(docs_dir / "expectations").glob("*.html")]
        localize_data_docs(docs_dir, [page for page in pages if page.is_file()])
        return built


def build_index(context: Any, site: str, place: DocsPlace) -> None:
    """The site's index (the lake's last runs) and its expectations page, rebuilt."""
    _fill_store(context.validation_results_store, place.results_dir)
    context.build_data_docs(
        site_names=[site],
        resource_identifiers=[ExpectationSuiteIdentifier(name=SUITE_NAME)],
        build_index=True,
    )
    pages = [place.docs_dir / "index.html", *(place.docs_dir / "expectations").glob("*.html")]
    localize_data_docs(place.docs_dir, [page for page in pages if page.is_file()])


def run_page(docs_dir: Path, key: ValidationResultIdentifier) -> Path:
    """Where GE renders the page of the run `key`."""
    run_time = key.run_id.run_time.strftime("%Y%m%dT%H%M%S.%fZ")
    page: Path = (
        docs_dir
        / "validations"
        / SUITE_NAME
        / key.run_id.run_name
        / run_time
        / f"{key.batch_identifier}.html"
    )
    return page


def _result_file(key: ValidationResultIdentifier) -> str:
    stamp = key.run_id.run_time.strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{key.run_id.run_name}.json"


def _keep_run(
    results_dir: Path, key: ValidationResultIdentifier, kept: ExpectationSuiteValidationResult
) -> None:
    document = {
        "run_name": key.run_id.run_name,
        "run_time": key.run_id.run_time.isoformat(),
        "batch_identifier": key.batch_identifier,
        "result": kept.to_json_dict(),  # type: ignore[no-untyped-call]
    }
    text = json.dumps(document, default=str)
    write_atomic(
        results_dir / _result_file(key),
        lambda temporary: temporary.write_text(text, encoding="utf-8"),
    )


# Per results folder: file name -> (key, stored run); loaded once per process.
_LOADED: dict[str, dict[str, tuple[ValidationResultIdentifier, Any]]] = {}


def _fill_store(
    store: Any,
    results_dir: Path,
    key: ValidationResultIdentifier | None = None,
    kept: ExpectationSuiteValidationResult | None = None,
    all_kept: bool = True,
) -> None:
    """GE's results store holds exactly this lake's last runs, the run `key` included;
    with `all_kept` False only that run (enough to render its page, not the index)."""
    cache = _LOADED.setdefault(str(results_dir), {})
    if key is not None:
        cache[_result_file(key)] = (key, kept)
    if all_kept:
        wanted = sorted(p.name for p in results_dir.glob("*.json"))[-DOCS_RESULTS_KEPT:]
    else:
        wanted = [_result_file(key)] if key is not None else []
    for name in wanted:
        if name in cache:
            continue
        try:
            loaded = json.loads((results_dir / name).read_text(encoding="utf-8"))
            run_key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=SUITE_NAME),
                run_id=RunIdentifier(
                    run_name=loaded["run_name"],
                    run_time=datetime.fromisoformat(loaded["run_time"]),
                ),
                batch_identifier=loaded["batch_identifier"],
            )
            cache[name] = (run_key, expectationSuiteValidationResultSchema.load(loaded["result"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable old run only leaves the index shorter
    for stale in set(cache) - set(wanted):
        del cache[stale]
    # Only the difference is written: setting a run serializes it, and re-setting all
    # kept runs for every batch cost about as much as the batch's validation.
    kept_keys = {run_key for run_key, _ in cache.values()}
    stored = set()
    for old_key in store.list_keys():
        if old_key in kept_keys and old_key != key:
            stored.add(old_key)
        else:
            store.remove_key(old_key)
    for run_key, result in cache.values():
        if run_key not in stored:
            store.set(run_key, result)


def forget_loaded_runs() -> None:
    """Drop the runs loaded in this process (as a new process would start)."""
    _LOADED.clear()


def ensure_site(context: Any, sites: dict[str, str], place: DocsPlace) -> str:
    """Register the lake's Data Docs site with the context once; returns its name."""
    site = place.site_name
    if site not in sites:
        context.add_data_docs_site(
            site,
            {
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(place.docs_dir),
                },
            },
        )
        sites[site] = str(place.docs_dir)
    return site


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
