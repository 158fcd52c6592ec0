"""Shared fixtures: where ../shared/data is, and real images from it.

Tests that need the shared data skip with a clear reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
SAMPLES = ROOT / "samples"
ARTIFACTS = Path(os.environ.get("FACELAB_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def data_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test saying what is missing."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared test data not found: {p} (tests that need ../shared/data skip without it)")
    return p


@pytest.fixture(scope="session")
def fr_examples() -> Path:
    return data_path("people", "face_recognition", "examples")


@pytest.fixture(scope="session")
def fr_test_images() -> Path:
    return data_path("people", "face_recognition", "tests", "test_images")


@pytest.fixture(scope="session")
def obama(fr_examples) -> np.ndarray:
    import facelab

    return facelab.load_image(fr_examples / "obama.jpg")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Gallery / identities fixtures (embedded sets, PostgreSQL server, store URLs)
from identity_fixtures import *  # noqa: E402,F401,F403

# Server fixtures (apps, API keys, live uvicorn server)
from serve_fixtures import *  # noqa: E402,F401,F403
