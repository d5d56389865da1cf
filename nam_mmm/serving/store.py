"""A model store: immutable artifacts side by side and one pointer to the served one.

::

    <store>/
      current.json          {"version": ..., "path": "models/<version>", "switched_at": ..., "previous": ...}
      models/<version>/     artifacts (nam_mmm.serving.artifact); written once, never modified
      retrain/<timestamp>/  retraining work folders (config, data, the new run, its log)
      history.jsonl         one line per switch and per retraining decision and outcome

A new model is written into ``models/`` completely (a temporary sibling renamed into place) before
``current.json`` is replaced through :func:`os.replace`, so a reader sees the old or the new pointer and both
point at complete artifacts; a crash at any step leaves the served model as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from nam_mmm.serving.artifact import METADATA, ArtifactError, ModelArtifact, _fsync_dir, _iso, export_artifact, write_json_atomic

POINTER = "current.json"


class ModelStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.models = self.root / "models"
        self.pointer = self.root / POINTER
        self.history = self.root / "history.jsonl"

    @classmethod
    def init(cls, root: str | Path, source: str | Path, table=None) -> ModelStore:
        """A new store at ``root`` serving ``source`` (a run folder or an artifact)."""
        store = cls(root)
        if store.pointer.exists():
            raise ArtifactError(f"{root}: already a model store (current.json exists)")
        store.models.mkdir(parents=True, exist_ok=True)
        version = store.add(source, table)
        store.switch(version, reason="initial model")
        return store

    def add(self, source: str | Path, table=None) -> str:
        """Put the model of ``source`` (run folder or artifact folder) into ``models/``; returns its version."""
        source = Path(source)
        self.models.mkdir(parents=True, exist_ok=True)
        staging = self.models / f".incoming-{os.getpid()}-{time.time_ns()}"
        try:
            if (source / METADATA).exists():
                tmp = staging.with_name(staging.name + ".copy")
                shutil.copytree(source, tmp)
                os.replace(tmp, staging)
            else:
                export_artifact(source, staging, table)
            version = ModelArtifact.load(staging).version  # verified before it can be served
            dest = self.models / version
            if dest.exists():
                raise ArtifactError(f"{dest}: a model of this version is already in the store")
            os.replace(staging, dest)
            _fsync_dir(self.models)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return version

    def versions(self) -> list[str]:
        return sorted(p.name for p in self.models.iterdir() if p.is_dir() and not p.name.startswith(".")) if self.models.exists() else []

    def current_version(self) -> str:
        try:
            return str(json.loads(self.pointer.read_text())["version"])
        except (OSError, KeyError, json.JSONDecodeError) as err:
            raise ArtifactError(f"{self.pointer}: unreadable ({type(err).__name__})") from None

    def current_path(self) -> Path:
        path = self.models / self.current_version()
        if not (path / METADATA).exists():
            raise ArtifactError(f"{self.pointer}: points at {path}, which is not a complete artifact")
        return path

    def current(self, range_factor: float | None = None) -> ModelArtifact:
        return ModelArtifact.load(self.current_path(), range_factor=range_factor)

    def switch(self, version: str, reason: str = "") -> None:
        """Serve ``version`` from now on (atomic pointer replacement)."""
        if not (self.models / version / METADATA).exists():
            raise ArtifactError(f"{self.models / version}: not in the store")
        previous = self.current_version() if self.pointer.exists() else None
        write_json_atomic(self.pointer, {"version": version, "path": f"models/{version}", "switched_at": _iso(time.time()), "previous": previous, "reason": reason})
        self.log({"event": "switch", "version": version, "previous": previous, "reason": reason})

    def log(self, event: dict) -> None:
        from nam_mmm.run_folder import jsonable

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.history, "a") as f:
            f.write(json.dumps(jsonable({"time": _iso(time.time()), **event})) + "\n")
