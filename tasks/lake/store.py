"""Where a lake's data files live: a local folder, or an object store (`s3://bucket/prefix`, or
any filesystem URL pyarrow or fsspec knows), behind one small interface (`LakeStore`).

The commit protocol (`tasks/batch/commit.py`) is the same for both. A batch's files are
staged in the local control folder, the ledger records their final names (the point of no
return), then `publish` puts each one at its final name, which carries the batch's id
(`year=Y/month=M/part-<batch_id>-N.parquet`): a rename into a folder, a single PUT into an
object store (an object appears whole or not at all, so no rename is needed there). Nothing
reaches the store before the point of no return, so a reader of the store never sees a row
that recovery takes back; a batch that dies after it is finished by publishing again
(a PUT of the same bytes is idempotent). No folder marker objects are written: keys are
put directly, never through `create_dir`.

An object-store lake keeps its control data (ledger, staging, quarantine, quality) in a
local control folder; `state/store.json` there binds that folder to the store's URL
(`bind_store`), and the pass addresses the lake by that folder (`store_for`).
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
        # The staged file stays until the staging folder is cleared: a recovery that runs
        # this again puts the same bytes again.
        with (
            staged.open("rb") as source,
            self.filesystem.open_output_stream(self.key(relative)) as target_stream,
        ):
            while chunk := source.read(_CHUNK):
                target_stream.write(chunk)

    def delete(self, relative: str) -> None:
        """Remove a data file (missing is fine: deleting is idempotent)."""
        if self.local:
            Path(self.key(relative)).unlink(missing_ok=True)
            return
        # Through fsspec: pyarrow's S3 delete puts a marker object back for a "folder" it
        # empties (`year=2008/month=5/`), which fsspec readers then trip over.
        import fsspec

        spec, _ = fsspec.core.url_to_fs(self.url)
        with contextlib.suppress(FileNotFoundError):
            spec.rm_file(self.key(relative))

    def data_files(self) -> list[str]:
        """Lake-relative names of the data files (what `DATA_GLOB` reads), sorted."""
        try:
            infos = self.filesystem.get_file_info(
                pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
            )
        except FileNotFoundError:
            return []
        prefix = self.root + "/"
        names = [
            info.path.removeprefix(prefix)
            for info in infos
            if info.type == pafs.FileType.File and info.path.startswith(prefix)
        ]
        return sorted(name for name in names if is_data_name(name))

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
    if not root:
        raise StoreError(f"{url}: name a bucket (and a prefix) for the lake")
    return LakeStore(url, filesystem, root)
