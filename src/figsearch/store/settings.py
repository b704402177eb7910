"""Settings (JSON values in ``meta``) and the registry of models a collection was embedded with."""

from __future__ import annotations

import json

from figsearch.fsutil import utcnow
from figsearch.store.base import Repository


class Settings(Repository):
    def get(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (f"setting:{key}",)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"setting:{key}", json.dumps(value, sort_keys=True)))

    def meta(self, key: str) -> str | None:
        """A raw ``meta`` value (``schema_version``, ``created_at``)."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None


class ModelRegistry(Repository):
    def register(self, name: str, modality: str, settings: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)",
                (name, modality, json.dumps(settings, sort_keys=True), utcnow()),
            )

    def get(self, name: str) -> dict | None:
        row = self.db.execute("SELECT * FROM models WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        return {"name": row["name"], "modality": row["modality"], "settings": json.loads(row["settings_json"]),
                "registered_at": row["registered_at"]}
