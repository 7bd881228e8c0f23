import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory):
    """Settings for a real index of seeds/, built once per test session."""
    from index.build import build_index
    from index.config import load_settings

    settings = load_settings(corpus=SEEDS, index_dir=tmp_path_factory.mktemp("seed-index"))
    build_index(settings)
    return settings


@pytest.fixture(scope="session")
def seed_qa(seed_settings):
    from qa.engine import QA

    return QA(seed_settings, build_if_missing=False)


@pytest.fixture
def corpus_copy(tmp_path):
    """A writable copy of seeds/ in a temporary folder."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target
