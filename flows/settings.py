"""Ingest and watch settings: defaults, then `CABLESTREAM_*` env vars, then explicit values.

Every option can come from a CLI flag, a flow/deployment parameter or an env
var; an explicit value (not None) wins over the env var, which wins over the
default (pydantic-settings does the reading and the range checks). Values
and paths are checked before any work; a bad one is an `InputError` whose
message is one line naming the flag or env var it came from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import cablestream.flows.defaults as defaults
from cablestream.flows.cluster import ADDRESS, LOCAL
from cablestream.schemas import lake as layout
from cablestream.tasks.batch.claim import open_inbox
from cablestream.tasks.inbox.store import Inbox, ObjectInbox
from cablestream.tasks.lake.store import StoreError, bind_store, bound_url, open_store

ENV_PREFIX = "CABLESTREAM_"
LEDGER_URL_SCHEMES = ("postgresql://", "postgres://")
# `s3://bucket/x` (which pathlib would turn into a local folder `s3:/bucket/x`).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


class InputError(ValueError):
    """A setting or path the user gave is unusable; the message is one line for them."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _shown_url(text: str) -> str:
    """`s3:/bucket/x` (what pathlib made of it) as the URL it was: `s3://bucket/x`."""
    return re.sub(r"^([A-Za-z0-9+.-]+):/+", r"\1://", text)


def _labelled(label: str, value: str) -> str:
    return f"{label}{value}" if label.endswith("=") else f"{label} {value}"


def refuse_url(label: str, value: object) -> None:
    """A place that must be a local folder: say so instead of writing a local `s3:` folder."""
    text = str(value)
    if _URL.match(text):
        raise InputError(
            f"{_labelled(label, _shown_url(text))}: must be a local folder "
            "(object stores, s3:// ..., are for --inbox and --lake)"
        )


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid"
    )

    inbox: Path = defaults.INBOX
    lake: Path = defaults.LAKE
    # A file is ready once untouched this long (or at once with a NAME.done marker).
    settle_seconds: float = Field(defaults.SETTLE_SECONDS, ge=0, le=86_400)
    # A micro-batch (a group of files) closes at this many files or bytes (one group task each).
    max_files_per_batch: int = Field(defaults.MAX_FILES_PER_BATCH, ge=1, le=1_000_000)
    max_batch_bytes: int = Field(defaults.MAX_BATCH_BYTES, ge=1, le=1 << 40)
    # Bigger files go to the quarantine as `oversized`.
    max_file_bytes: int = Field(defaults.MAX_FILE_BYTES, ge=1, le=1 << 40)
    # A batch that fails validation is retried; after this many tries it is quarantined whole.
    max_attempts: int = Field(defaults.MAX_ATTEMPTS, ge=1, le=100)
    # Move settled source files here (relative layout kept); None leaves them in the inbox.
    archive: Path | None = None
    # Watch mode: close a micro-batch this long after its first event, rescan this often.
    max_wait_seconds: float = Field(defaults.MAX_WAIT_SECONDS, gt=0, le=3600)
    rescan_seconds: float = Field(defaults.RESCAN_SECONDS, gt=0, le=86_400)
    # A PostgreSQL ledger that several ingesting processes share; None: the lake's own SQLite.
    ledger: str | None = None
    # Run the pass's per-file-group tasks on Dask: `local` or a scheduler's address
    # (flows/cluster.py); None: on the flow's own thread pool.
    dask: str | None = None
    # The object-store URLs when the inbox or the lake is one (`s3://bucket/prefix`). An
    # object-store lake is then addressed by its local control folder (`lake`, from
    # CABLESTREAM_CONTROL; tasks/lake/store.py), and the inbox by `inbox_location()`.
    _inbox_url: str | None = PrivateAttr(None)
    _lake_url: str | None = PrivateAttr(None)

    @field_validator("ledger")
    @classmethod
    def _ledger_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(LEDGER_URL_SCHEMES):
            raise ValueError("give a postgresql://user@host/database URL")
        if urlsplit(value).password is not None or "password=" in value:
            # The URL is a flow parameter, which the Prefect API stores and shows.
            raise ValueError("keep the password out of the URL: set PGPASSWORD or ~/.pgpass")
        return value

    @field_validator("dask")
    @classmethod
    def _dask_address(cls, value: str | None) -> str | None:
        if value is None or value == LOCAL or ADDRESS.match(value):
            return value
        raise ValueError("give `local` or a Dask scheduler's address, tcp://host:port")

    @classmethod
    def resolve(cls, **explicit: Any) -> IngestSettings:
        """Defaults, overridden by env vars, overridden by the explicit values that are not None."""
        unknown = set(explicit) - set(cls.model_fields)
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        given = {name: value for name, value in explicit.items() if value is not None}
        urls: dict[str, str] = {}
        for name in ("inbox", "lake", "archive"):
            # Checked before pydantic (or pathlib) normalises `s3://` away.
            raw = given.get(name, os.environ.get(env_name(name)))
            label = flag_name(name) if name in given else env_name(name) + "="
            if not raw or not _URL.match(str(raw)):
                continue
            if name == "archive":
                refuse_url(label, raw)
            urls[name] = _shown_url(str(raw))
            if name == "lake":
                given["lake"] = _control_folder(_labelled(label, urls[name]))
            else:
                given["inbox"] = Path(urls[name])  # never a folder: see `inbox_location`
        try:
            settings = cls(**given)
        except ValidationError as error:
            raise InputError(_one_line(error, given)) from None
        settings._inbox_url = urls.get("inbox")
        settings._lake_url = urls.get("lake")
        return settings

    @property
    def inbox_url(self) -> str | None:
        """The object store the inbox is in, or None for a local inbox."""
        return self._inbox_url

    @property
    def lake_url(self) -> str | None:
        """The object store the lake is in, or None for a local lake."""
        return self._lake_url

    def inbox_location(self) -> Inbox:
        """The inbox: a local folder (resolved), or a prefix of an object store."""
        if self._inbox_url is None:
            return self.inbox.resolve()
        try:
            return open_inbox(self._inbox_url)
        except StoreError as error:
            raise InputError(f"inbox {error}") from None

    def lake_root(self) -> Path:
        """How a pass addresses the lake: its folder, or the control folder an object-store
        lake is bound to (bound here on first use)."""
        if self._lake_url is not None:
            bind_store(self.lake, self._lake_url)
        return self.lake.resolve()

    @property
    def uses_object_store(self) -> bool:
        return self._inbox_url is not None or self._lake_url is not None

    def local_only(self, command: str) -> None:
        """InputError unless the inbox and the lake are local folders."""
        for url in (self._inbox_url, self._lake_url):
            if url is not None:
                raise InputError(f"{command} needs a local inbox and lake, not {url} (not yet)")

    def check_paths(self, *, needs_inbox: bool = True) -> None:
        """Folders exist or can be made, are writable, and none lies inside another; an
        object store answers (credentials, endpoint, bucket)."""
        # The local folders of this run, none of which may lie inside another.
        folders: list[tuple[str, Path]] = []
        inbox = self.inbox_location() if needs_inbox else None
        if isinstance(inbox, ObjectInbox):
            _answers("inbox", inbox.url, inbox.filesystem, inbox.root)
        elif inbox is not None:
            if not inbox.exists():
                raise InputError(f"inbox {self.inbox} does not exist")
            if not inbox.is_dir():
                raise InputError(f"inbox {self.inbox} is not a folder")
            if not os.access(inbox, os.R_OK | os.X_OK):
                raise InputError(f"inbox {self.inbox} is not readable")
            folders.append(("inbox", inbox))
        if self._lake_url is not None:
            self._check_object_lake(self._lake_url)
            folders.append(("lake's control folder", self.lake.resolve()))
        else:
            folders += self._check_local_lake()
        if self.archive is not None:
            if isinstance(inbox, ObjectInbox):
                raise InputError(f"--archive {self.archive}: not for an object-store inbox")
            writable_folder("archive", self.archive)
            folders.append(("archive", self.archive.resolve()))
        for index, first in enumerate(folders):
            for second in folders[index + 1 :]:
                _not_nested(first, second)

    def _check_local_lake(self) -> list[tuple[str, Path]]:
        lake = self.lake.resolve()
        control = layout.control_root(self.lake)
        bound = bound_url(control)
        if bound is not None:
            raise InputError(
                f"the control folder {control} belongs to the object-store lake {bound}"
            )
        writable_folder("lake", self.lake)
        writable_folder("lake's control folder", control)
        if layout.CONTROL_ENV in os.environ and _device(control) != _device(lake):
            raise InputError(
                f"{layout.CONTROL_ENV}={os.environ[layout.CONTROL_ENV]} is not on the lake's "
                "filesystem (a staged file must be renamed into the lake)"
            )
        return [("lake", lake), ("lake's control folder", control)]

    def _check_object_lake(self, url: str) -> None:
        writable_folder(layout.CONTROL_ENV, self.lake)
        bound = bound_url(self.lake)
        if bound is not None and bound != url:
            raise InputError(
                f"{layout.CONTROL_ENV}={self.lake} holds the control data of the lake {bound},"
                f" not of {url}"
            )
        try:
            store = open_store(url)
        except StoreError as error:
            raise InputError(f"lake {error}") from None
        _answers("lake", store.url, store.filesystem, store.root)


def _control_folder(given: str) -> Path:
    """The local control folder an object-store lake needs (ledger, staging, quarantine)."""
    control = os.environ.get(layout.CONTROL_ENV)
    if not control:
        raise InputError(
            f"{given}: an object-store lake keeps its ledger, staging and quarantine in a local"
            f" folder: name one with {layout.CONTROL_ENV}=PATH"
        )
    refuse_url(layout.CONTROL_ENV + "=", control)
    return Path(control)


def _answers(label: str, url: str, filesystem: Any, root: str) -> None:
    """The store answers for `root` and its bucket exists (the prefix need not); else a
    one-line InputError (credentials, endpoint, bucket)."""
    import pyarrow.fs as pafs

    try:
        if filesystem.type_name in ("s3", "gcs"):
            bucket = root.split("/", 1)[0]
            if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise InputError(f"{label} {url}: there is no bucket {bucket!r}")
        filesystem.get_file_info(root)
    except OSError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{label} {url}: the object store does not answer: {first}") from None


def _one_line(error: ValidationError, given: dict[str, Any]) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    message = str(first["msg"]).removeprefix("Value error, ")
    if field in given:
        return f"{flag_name(field)} {given[field]}: {message}"
    return f"{env_name(field)}={os.environ.get(env_name(field), '')!r}: {message}"


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _device(path: Path) -> int:
    return _existing_ancestor(path.resolve()).stat().st_dev


def writable_folder(label: str, path: Path) -> None:
    """`path` is a writable folder, or can be made one (its nearest existing parent is)."""
    refuse_url(label, path)
    resolved = path.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise InputError(f"{label} {path} is not a folder")
    anchor = _existing_ancestor(resolved)
    if not anchor.is_dir():
        raise InputError(f"{label} {path}: {anchor} is not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise InputError(f"{label} {path} is not writable ({anchor})")


def _not_nested(first: tuple[str, Path], second: tuple[str, Path]) -> None:
    (first_label, first_path), (second_label, second_path) = first, second
    if first_path == second_path:
        raise InputError(f"the {first_label} and the {second_label} are the same folder")
    if second_path.is_relative_to(first_path):
        raise InputError(f"the {second_label} {second_path} is inside the {first_label}")
    if first_path.is_relative_to(second_path):
        raise InputError(f"the {first_label} {first_path} is inside the {second_label}")
