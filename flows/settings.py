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

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import cablestream.flows.defaults as defaults
from cablestream.flows.cluster import ADDRESS, LOCAL
from cablestream.schemas import lake as layout

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


def refuse_url(label: str, value: object) -> None:
    """Object stores are not supported yet: say so instead of writing a local `s3:` folder."""
    text = str(value)
    if _URL.match(text):
        shown = re.sub(r"^([A-Za-z0-9+.-]+):/+", r"\1://", text)
        given = f"{label}{shown}" if label.endswith("=") else f"{label} {shown}"
        raise InputError(
            f"{given}: object stores (s3://, gs://, ...) are not supported yet; give a local folder"
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
        for name in ("inbox", "lake", "archive"):
            # Checked before pydantic (or pathlib) normalises `s3://` away.
            raw = given.get(name, os.environ.get(env_name(name)))
            if raw:
                refuse_url(flag_name(name) if name in given else env_name(name) + "=", raw)
        try:
            return cls(**given)
        except ValidationError as error:
            raise InputError(_one_line(error, given)) from None

    def check_paths(self, *, needs_inbox: bool = True) -> None:
        """Folders exist or can be made, are writable, and none lies inside another."""
        lake = self.lake.resolve()
        control = layout.control_root(self.lake)
        if needs_inbox:
            inbox = self.inbox.resolve()
            if not inbox.exists():
                raise InputError(f"inbox {self.inbox} does not exist")
            if not inbox.is_dir():
                raise InputError(f"inbox {self.inbox} is not a folder")
            if not os.access(inbox, os.R_OK | os.X_OK):
                raise InputError(f"inbox {self.inbox} is not readable")
            _not_nested(("inbox", inbox), ("lake", lake))
            _not_nested(("inbox", inbox), ("lake's control folder", control))
        writable_folder("lake", self.lake)
        writable_folder("lake's control folder", control)
        _not_nested(("lake", lake), ("lake's control folder", control))
        if layout.CONTROL_ENV in os.environ and _device(control) != _device(lake):
            raise InputError(
                f"{layout.CONTROL_ENV}={os.environ[layout.CONTROL_ENV]} is not on the lake's "
                "filesystem (a staged file must be renamed into the lake)"
            )
        if self.archive is not None:
            archive = self.archive.resolve()
            writable_folder("archive", self.archive)
            for other in (("inbox", self.inbox.resolve()), ("lake", lake)):
                _not_nested(("archive", archive), other)


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
