"""The history page in headless Chromium: a chart per case for the chosen machine and metric, change
points marked, each point linked to its commit and run, and nothing fetched from the network."""

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from dnnbench.results.history import store
from dnnbench.results.history.changes import ALL_CASES
from tests.conftest import run_cli
from tests.test_history import synthetic
from tests.test_report_browser import browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COMMIT_URL = "https://example.invalid/repo/commit/"


@pytest.fixture
def page(tmp_path):
    rng = np.random.default_rng(8)
    slow = 1000 * np.exp(0.02 * rng.standard_normal(30))
    slow[20:] *= 0.6
    m1 = {"slow": slow, "steady": 500 * np.exp(0.02 * rng.standard_normal(30)), "third": np.full(30, 80.0)}
    m2 = {"slow": 900 * np.exp(0.02 * rng.standard_normal(30)), "steady": np.full(30, 400.0)}
    entries = synthetic(tmp_path, m1, machine="m1") + synthetic(tmp_path, m2, machine="m2", start=100)
    (tmp_path / "run-folder").mkdir()
    (tmp_path / "run-folder" / "report.html").write_text("<html>a run</html>")
    entries[25].line["source"] = str(tmp_path / "run-folder")  # one run whose folder is on this disk
    store.rebuild(tmp_path / "h", entries)
    out = run_cli("history", "--dir", str(tmp_path / "h"), "--commit-url", COMMIT_URL)
    assert out.returncode == 0, out.stderr
    assert "2 machine(s)" in out.stdout and "2 regression(s)" in out.stdout  # the case and ALL CASES of m1
    return tmp_path / "h" / "index.html"


def charts(driver):
    return {f.get_attribute("data-case"): f for f in driver.find_elements(By.CSS_SELECTOR, "figure.chart")}


def test_the_page_is_one_file_that_fetches_nothing(page):
    html = page.read_text()
    assert "<script src" not in html and "<link" not in html and "@import" not in html


def test_charts_follow_the_machine_and_metric_chosen(page, browser):  # noqa: F811
    browser.get(page.as_uri())
    assert set(charts(browser)) == {ALL_CASES, "slow", "steady", "third"}  # m1, the first machine
    Select(browser.find_element(By.ID, "machine")).select_by_value("m2")
    assert set(charts(browser)) == {ALL_CASES, "slow", "steady"}
    assert browser.find_element(By.ID, "machine").is_displayed()  # two machines: the selector shows
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_the_change_point_is_marked_where_the_step_is(page, browser):  # noqa: F811
    browser.get(page.as_uri())
    slow = charts(browser)["slow"]
    (mark,) = slow.find_elements(By.CSS_SELECTOR, "line.change.regression")
    points = slow.find_elements(By.CSS_SELECTOR, "circle.point")
    assert len(points) == 30
    x = float(mark.get_attribute("x1"))
    assert float(points[19].get_attribute("cx")) < x < float(points[20].get_attribute("cx"))
    assert "regression -40" in mark.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert charts(browser)["steady"].find_elements(By.CSS_SELECTOR, "line.change") == []


def test_a_point_links_to_its_commit_and_its_run(page, browser):  # noqa: F811
    browser.get(page.as_uri())
    point = charts(browser)["slow"].find_elements(By.CSS_SELECTOR, "circle.point")[25]
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", point)
    details = browser.find_element(By.ID, "details")
    commit = details.find_element(By.CSS_SELECTOR, "a.commit-link")
    assert commit.get_attribute("href") == COMMIT_URL + f"{25:040x}"
    run = details.find_element(By.CSS_SELECTOR, "a.run-link")
    assert run.get_attribute("href").endswith("/run-folder/report.html")


def test_a_case_name_that_looks_like_markup_is_drawn_as_text(tmp_path, browser):  # noqa: F811
    name = "evil</script><!--<script><img src=x onerror=alert(1)>"
    store.rebuild(tmp_path / "h", synthetic(tmp_path, {name: np.full(6, 100.0), "plain": np.full(6, 50.0)}))
    assert run_cli("history", "--dir", str(tmp_path / "h")).returncode == 0
    browser.get((tmp_path / "h" / "index.html").as_uri())
    assert set(charts(browser)) == {ALL_CASES, name, "plain"}
    assert browser.find_elements(By.TAG_NAME, "img") == []
