"""Every fault of tests/fault_campaign.py once: records whole, none lost or duplicated, the folder
readable, --resume finishing, no process left behind, one line instead of a traceback."""

import random

import pytest

from tests.fault_campaign import SCENARIOS, expected_keys

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    return expected_keys(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_results_folder_survives(name, expected, tmp_path):
    outcome = SCENARIOS[name](tmp_path, expected, random.Random(name))
    problems = (outcome.lost, outcome.duplicated, outcome.unreadable, outcome.tracebacks)
    assert problems == (0, 0, 0, 0), (outcome.scenario, outcome.notes)
