"""Shared fixtures. Tests build their own small data; tests on ../shared/data skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Every hub look-up would hang ~45 s before failing on an offline machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FIGSEARCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real patent data), or skip with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real patent data not found at {SHARED_DATA} (set FIGSEARCH_SHARED_DATA to its folder)")
    return SHARED_DATA


@pytest.fixture
def collection_dir(tmp_path: Path) -> Path:
    return tmp_path / "collection"
