"""The HTML report of a real smoke run, opened in headless Chromium (Debian's chromium + chromedriver)."""

import io
import shutil

import matplotlib.image
import pytest

from dnnbench.views.report import CHARTS, build_report
from tests.conftest import run_cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def report(smoke_run):
    results, _ = smoke_run
    out = run_cli("report", str(results))
    assert out.returncode == 0, out.stderr
    assert "self-contained" in out.stdout
    return results / "report.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromedriver are needed: `make test` installs Debian's chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1400, 1000)
    yield driver
    driver.quit()


def test_report_is_one_self_contained_file(report):
    html = report.read_text()
    assert "<script" not in html  # nothing to execute, nothing fetched
    assert "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") == len(list((report.parent / "charts").glob("*.png")))
    assert (report.parent / "summary.md").read_text().startswith("# dnnbench report")
    assert len(list((report.parent / "tables").glob("*.csv"))) >= 5


def test_report_renders_in_chromium(report, browser):
    browser.get(report.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) >= 6
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, alt
    ids = set(browser.execute_script("return Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    assert {"summary", "tables", "charts", "environment"} <= ids
    smoke_charts = {
        "race",
        "validation",
        "throughput",
        "loaders",
        "regularization",
        "time_to_target",
        "phases",
        "gradients",
    }
    assert {f"chart-{name}" for name in smoke_charts} <= ids
    assert {name for name, _, _ in CHARTS} - {"sensitivity", "profiles"} == smoke_charts  # those two: tuning runs
    assert {"table-all_cases", "table-loaders_throughput_samples_per_s"} <= ids
    text = browser.find_element("tag name", "body").text
    assert "pin_memory only speeds host-to-GPU copies" in text  # skips shown with their reason
    assert "make bench" in text or "pytest" in text  # the command that produced the run


def test_screenshot_is_not_blank(report, browser):
    browser.get(report.as_uri() + "#charts")
    pixels = matplotlib.image.imread(io.BytesIO(browser.get_screenshot_as_png()), format="png")
    assert pixels.shape[0] > 500 and pixels.shape[1] > 500
    assert pixels[..., :3].std() > 0.05  # a blank page is one flat colour


def test_report_shows_failed_and_skipped_cases(tmp_path, smoke_run):
    # A run where every case diverged, beside the smoke run's skips: the report still builds and says so.
    from tests.conftest import run_bench

    out = run_bench("--matrix", "smoke", "--results", str(tmp_path / "bad"), "--set", "lr=1e9", "-k", "cubic")
    assert out.returncode == 0
    files = build_report([tmp_path / "bad", smoke_run[0]], out=tmp_path / "side-by-side" / "report.html")
    html = files.html.read_text()
    assert html.count(">diverged<") >= 5 and html.count(">skipped<") >= 5
    assert "DIVERGED: cubic_b20_sgd_lr1e+09_note_tensor_e3_cpu: training loss became" in html
