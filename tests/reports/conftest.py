"""Fixtures of the reports tests; the tables themselves are built in sample_results.py."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.reports.sample_results import fake_results, hand_table


@pytest.fixture
def hand() -> pd.DataFrame:
    return hand_table()


@pytest.fixture
def fake() -> pd.DataFrame:
    return fake_results()
