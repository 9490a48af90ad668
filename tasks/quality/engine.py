"""The Great Expectations engine: one ephemeral context per process, one checkpoint run per batch.

great_expectations is imported only inside functions here (about 6 s and
300 MB), and its context is built once per process and reused.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cablestream.schemas.expectations import SUITE_NAME, build_suite

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# Ids and values kept per expectation in `results` (the full lists are only used for routing).
SAMPLE_SIZE = 20
# The context's results store: only the capped runs the action keeps (`datadocs.py`).
RESULTS_STORE = "cablestream_runs"


@dataclass(slots=True)
class _Engine:
    context: Any
    validation_definition: Any
    lock: threading.Lock
    docs_sites: dict[str, str] = field(default_factory=dict)


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def get_engine() -> _Engine:
    """The ephemeral GE context with the pandas datasource and the suite (created once)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            context.add_store(
                RESULTS_STORE,
                {
                    "class_name": "RunsKeptByTheAction",
                    "module_name": "cablestream.tasks.quality.datadocs",
                    "store_backend": {"class_name": "InMemoryStoreBackend"},
                },
            )
            context.validation_results_store_name = RESULTS_STORE
            datasource = context.data_sources.add_pandas("cablestream")
            # Key-safe name; each run's batch spec names the real lake and batch.
            asset = datasource.add_dataframe_asset("lake")
            batch_definition = asset.add_batch_definition_whole_dataframe("batch")
            suite = context.suites.add(build_suite())
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=SUITE_NAME, data=batch_definition, suite=suite)
            )
            _ENGINE = _Engine(context, definition, threading.Lock())
        return _ENGINE


def warm_up_in_background() -> threading.Thread:
    """Import great_expectations and build the context in a daemon thread.

    The import costs seconds of mostly CPU; started before something the
    process only waits for (the Prefect temporary server start, about 11-15 s
    here), it is hidden. `validate_batch` waits for it through the engine lock.
    """
    thread = threading.Thread(target=get_engine, name="cablestream-ge-warm-up", daemon=True)
    thread.start()
    return thread


RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["record_id"],
    "partial_unexpected_count": SAMPLE_SIZE,
    "return_unexpected_index_query": False,
}


def run_checkpoint(
    frame: pd.DataFrame,
    batch_id: str,
    ran_at: datetime,
    lake_root: Path,
    parameters: dict[str, Any],
    docs_index: bool = True,
) -> tuple[Any, str | None]:
    """One GE checkpoint run of the suite over `frame`; the run and its Data Docs page.

    `docs_index` False: the site's index is left for `build_docs_index` (once per pass).
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    from cablestream.tasks.quality import datadocs
    from cablestream.tasks.quality.tables import docs_place, safe_name

    engine = get_engine()
    place = docs_place(lake_root)
    run_name = safe_name(batch_id)
    with engine.lock:
        site = datadocs.ensure_site(engine.context, engine.docs_sites, place)
        action = datadocs.LakeBatchAction(
            name="judge-and-update-data-docs",
            site_names=[site],
            lake=str(lake_root),
            batch_id=batch_id,
            rows=len(frame),
            docs_dir=str(place.docs_dir),
            results_dir=str(place.results_dir),
            index=docs_index,
        )
        # A checkpoint per run: its action carries this run's lake and batch.
        name = f"{SUITE_NAME}-{uuid.uuid4().hex}"
        checkpoint = engine.context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[engine.validation_definition],
                actions=[action],
                result_format=RESULT_FORMAT,
            )
        )
        try:
            result = checkpoint.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                run_id=RunIdentifier(run_name=run_name, run_time=ran_at),
            )
        finally:
            engine.context.checkpoints.delete(name)
    ((key, suite_result),) = result.run_results.items()
    page = datadocs.run_page(place.docs_dir, key)
    return suite_result, (page.relative_to(place.docs_dir).as_posix() if page.is_file() else None)


def build_docs_index(lake_root: Path) -> None:
    """The lake's Data Docs index (its last runs) and expectations page, rebuilt: at the
    end of an ingest pass, whose groups rendered only their own run pages."""
    from cablestream.tasks.quality import datadocs
    from cablestream.tasks.quality.tables import docs_place

    engine = get_engine()
    place = docs_place(lake_root)
    with engine.lock:
        site = datadocs.ensure_site(engine.context, engine.docs_sites, place)
        datadocs.build_index(engine.context, site, place)
