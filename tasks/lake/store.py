"""Where a lake's data files live: a local folder, or an object store (`s3://bucket/prefix`, or
any filesystem URL pyarrow or fsspec knows), behind one small interface (`LakeStore`).

The commit protocol (`tasks/batch/commit.py`) is the same for both: a batch's files are
staged, the ledger records their final names (the point of no return), then `publish`
puts each one at its final name, which carries the batch's id
(`year=Y/month=M/part-<batch_id>-N.parquet`), and the batch is committed.

- A local lake stages in its control folder and publishes by renaming into the lake.
- An object-store lake stages on the store itself, under the batch's id in a staging
  prefix beside the lake's (`s3://bucket/lake` -> `s3://bucket/lake.cablestream/staging/
  <batch_id>/...`), so that any host sharing the ledger can finish (or undo) any batch, and
  a Dask worker on another machine can stage. Beside, never under the lake's prefix:
  DuckDB's `**` glob and Polars' directory scan read `_`- and `.`-named folders too. A
  batch's files are written locally first (a replacement rewrites them there) and put into
  the staging prefix (`push`) before the point of no return; publishing copies each data
  file to its final key on the server (no rename: an object appears whole or not at all),
  so no reader of the lake sees a row before the batch counts, nor one that recovery
  takes back. A batch that dies before its point of no return has its staging prefix
  deleted by recovery; one that dies after it is finished by copying again (idempotent).
  No folder marker objects are written: keys are put directly, never through
  `create_dir`, and deleted through fsspec.

An object-store lake keeps its other control data (ledger unless `--ledger`, quarantine,
quality) in a local control folder; `state/store.json` there binds that folder to the
store's URL (`bind_store`), and the pass addresses the lake by that folder (`store_for`).
Credentials and endpoint come from the usual AWS variables or profile (`AWS_PROFILE`,
`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, ...), read by pyarrow or fsspec.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.tasks.lake.atomic import write_atomic
from cablestream.tasks.lake.partition import DATA_GLOB

# `s3://bucket/x`, `gs://...`, `memory://...`: a URL, not a local path.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_CHUNK = 1024 * 1024


class StoreError(ValueError):
    """A store URL that cannot be used, or a control folder bound to another store."""


def is_url(text: str) -> bool:
    return bool(_URL.match(text)) and not text.startswith("file://")


def open_filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a URL and the path inside it (no trailing `/`).

    pyarrow's own filesystems first (S3, GCS, HDFS, ...), then any fsspec one
    (`memory://`, `az://` with adlfs installed, ...) through pyarrow's fsspec handler.
    """
    try:
        filesystem, path = pafs.FileSystem.from_uri(url)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec

        try:
            spec, path = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as error:
            raise StoreError(f"{url}: no filesystem for it ({error})") from None
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(spec))
    return filesystem, path.rstrip("/")


def key_under(root: str, relative: str) -> str:
    """`root/relative`, refusing a relative name that would leave `root` (`..`, `/x`, `a//b`)."""
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        raise layout.UnsafePathError(f"not a name inside the store: {relative!r}")
    return f"{root}/{relative}"


def is_data_name(relative: str) -> bool:
    """Whether a lake-relative name is a data file (what `DATA_GLOB` reads, whole)."""
    parts, patterns = relative.split("/"), DATA_GLOB.split("/")
    return len(parts) == len(patterns) and all(map(fnmatchcase, parts, patterns))


def rename_into(staged: Path, target: Path) -> None:
    """Rename a staged file to `target` (same filesystem: atomic). Idempotent: a file
    already moved (by a concurrent `finish`) is skipped."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staged, target)
    except FileNotFoundError:
        if not target.exists():
            raise


@dataclass(frozen=True, slots=True)
class LakeStore:
    """The lake's data files in `filesystem` under `root`; `url` is what the user named."""

    url: str
    filesystem: pafs.FileSystem
    root: str

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def key(self, relative: str) -> str:
        return key_under(self.root, relative)

    def publish(self, staged: Path, relative: str) -> None:
        """Put a staged file at its final name. Idempotent: a file already moved is skipped."""
        if self.local:
            rename_into(staged, layout.inside(Path(self.root), Path(self.root) / relative))
            return
        # A file staged locally (by an earlier version, before staging moved to the store)
        # stays until the staging folder is cleared: a recovery puts the same bytes again.
        self._put(staged, self.key(relative))

    def delete(self, relative: str) -> None:
        """Remove a data file (missing is fine: deleting is idempotent)."""
        if self.local:
            Path(self.key(relative)).unlink(missing_ok=True)
            return
        self._delete_keys([self.key(relative)])

    def _delete_keys(self, keys: list[str]) -> None:
        # Through fsspec: pyarrow's S3 delete puts a marker object back for a "folder" it
        # empties (`year=2008/month=5/`), which fsspec readers then trip over.
        import fsspec

        spec, _ = fsspec.core.url_to_fs(self.url)
        with contextlib.suppress(FileNotFoundError):
            spec.rm(keys)

    # -- an object-store lake's staging (see the module docstring) --------------------

    @property
    def staging_root(self) -> str:
        """The staging prefix, beside the lake's: `<lake>.cablestream/staging`."""
        return f"{self.root}{layout.CONTROL_SUFFIX}/{layout.STAGING_DIR}"

    def staged_key(self, batch_id: str, relative: str) -> str:
        return key_under(self.staging_root, f"{layout.check_batch_id(batch_id)}/{relative}")

    def staged(self, batch_id: str) -> list[str]:
        """The relative names of what the batch staged in the store, sorted."""
        return self._listing(f"{self.staging_root}/{layout.check_batch_id(batch_id)}")

    def staged_batches(self) -> list[str]:
        """The ids of the batches with files under the staging prefix."""
        return sorted({name.split("/", 1)[0] for name in self._listing(self.staging_root)})

    def push(self, batch_id: str, files: list[tuple[Path, str]]) -> None:
        """Put local staged files (path, relative name) into the batch's staging prefix."""
        for path, relative in files:
            self._put(path, self.staged_key(batch_id, relative))

    def pull(self, batch_id: str, stage: Path) -> None:
        """Move what the batch staged in the store into the local folder `stage` (to be
        rewritten there, then pushed again)."""
        for relative in self.staged(batch_id):
            self.fetch_staged(batch_id, relative, layout.inside(stage, stage / relative))
        self.clear_staged(batch_id)

    def publish_staged(self, batch_id: str, relative: str) -> None:
        """Copy a staged data file to its final key, on the server. Idempotent: a file
        whose staged key is gone was published by whoever cleared it."""
        staged, final = self.staged_key(batch_id, relative), self.key(relative)
        try:
            self.filesystem.copy_file(staged, final)
        except OSError:
            # S3 says NO_SUCH_KEY as an OSError: gone means published (and cleared) already.
            if self.filesystem.get_file_info(staged).type != pafs.FileType.NotFound:
                raise
            if self.filesystem.get_file_info(final).type != pafs.FileType.File:
                raise

    def fetch_staged(self, batch_id: str, relative: str, target: Path) -> None:
        """Write a staged file to the local `target` (temp-then-rename). Idempotent: a file
        whose staged key is gone was fetched by whoever cleared it."""
        try:
            source = self.filesystem.open_input_stream(self.staged_key(batch_id, relative))
        except FileNotFoundError:
            return
        with source:
            write_atomic(target, lambda temporary: _copy_to(source, temporary))

    def clear_staged(self, batch_id: str) -> None:
        """Delete the batch's staging prefix (nothing there is fine)."""
        keys = [self.staged_key(batch_id, name) for name in self.staged(batch_id)]
        if keys:
            self._delete_keys(keys)

    def _put(self, path: Path, key: str) -> None:
        with path.open("rb") as source, self.filesystem.open_output_stream(key) as target:
            while chunk := source.read(_CHUNK):
                target.write(chunk)

    def _listing(self, prefix: str) -> list[str]:
        """The name relative to `prefix` of every file under it, sorted."""
        try:
            infos = self.filesystem.get_file_info(
                pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
            )
        except FileNotFoundError:
            return []
        start = prefix + "/"
        return sorted(
            info.path.removeprefix(start)
            for info in infos
            if info.type == pafs.FileType.File and info.path.startswith(start)
        )

    def data_files(self) -> list[str]:
        """Lake-relative names of the data files (what `DATA_GLOB` reads), sorted."""
        return [name for name in self._listing(self.root) if is_data_name(name)]

    def read_table(self, relative: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.key(relative), columns=columns, filesystem=self.filesystem)

    def dataset(self, files: list[str] | None = None) -> ds.Dataset:
        """The data files (or the given lake-relative ones) as one hive-partitioned dataset."""
        names = self.data_files() if files is None else files
        return ds.dataset(
            [self.key(name) for name in names],
            format="parquet",
            filesystem=self.filesystem,
            partitioning=ds.partitioning(flavor="hive"),
            partition_base_dir=self.root,
        )


def bind_store(control: Path, url: str) -> LakeStore:
    """Bind a local control folder to an object-store lake (once; never to another URL)."""
    store = open_store(url)
    record = control / layout.STATE_DIR / layout.STORE_RECORD_FILE
    bound = bound_url(control)
    if bound is not None and bound != url:
        raise StoreError(f"control folder {control} belongs to the lake {bound}, not {url}")
    if bound is None:
        record.parent.mkdir(parents=True, exist_ok=True)
        scratch = record.with_name(f".{record.name}.{os.getpid()}.tmp")
        scratch.write_text(json.dumps({"lake": url}, indent=2) + "\n", encoding="utf-8")
        os.replace(scratch, record)
    return store


def bound_url(control: Path) -> str | None:
    """The object-store lake a control folder belongs to, or None (a local lake's folder)."""
    record = control / layout.STATE_DIR / layout.STORE_RECORD_FILE
    try:
        return str(json.loads(record.read_text(encoding="utf-8"))["lake"])
    except FileNotFoundError:
        return None


def store_for(lake: Path) -> LakeStore:
    """The store of the lake the pass addresses by `lake`: the object store its control
    folder is bound to, else the local folder itself."""
    url = bound_url(layout.control_root(lake))
    if url is None:
        resolved = lake.resolve()
        return LakeStore(str(resolved), pafs.LocalFileSystem(), str(resolved))
    return open_store(url)


@cache
def open_store(url: str) -> LakeStore:
    """The store of an object-store lake's URL (StoreError when it names no bucket)."""
    filesystem, root = open_filesystem(url)
    if "/" not in root:
        # The staging prefix goes beside the lake's, inside the same bucket.
        raise StoreError(f"{url}: name a prefix inside the bucket for the lake (s3://bucket/lake)")
    return LakeStore(url, filesystem, root)


def _copy_to(source: pa.NativeFile, target: Path) -> None:
    with target.open("wb") as sink:
        while chunk := source.read(_CHUNK):
            sink.write(chunk)
