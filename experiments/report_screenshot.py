"""A PNG of the top of a report.html, as headless Chromium renders it (the README's screenshot).

    python -m experiments.report_screenshot RUN/report.html docs/img/report.png [--width 1280] [--height 1000]

Needs Debian's chromium and chromium-driver (`make browser` installs them) and selenium (the dev extra).
The PNG is saved with as many colours as it needs, up to 256 (Pillow's quantizer, as matplotlib ships it),
so a page of text and charts stays small.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
from pathlib import Path

from PIL import Image


def find_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver, as tests/test_report_browser.py finds them."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        raise SystemExit("report_screenshot: chromium and chromedriver are needed (make browser installs them)")
    return chromium, chromedriver


def screenshot(report: Path, width: int, height: int) -> bytes:
    """The PNG Chromium renders of the first `height` pixels of `report` in a `width`-wide window."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = find_browser()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        try:
            driver.set_window_size(width, height)
            # The window's outer size includes browser chrome in some versions: size the viewport itself.
            inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
            driver.set_window_size(width + (width - inner[0]), height + (height - inner[1]))
            driver.get(report.resolve().as_uri())
            return driver.get_screenshot_as_png()
        finally:
            driver.quit()


def small_png(png: bytes, width: int, height: int, colours: int) -> bytes:
    """`png` cropped to width × height and reduced to `colours` colours."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.crop((0, 0, min(width, image.width), min(height, image.height)))
    out = io.BytesIO()
    image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a report.html (dnnbench report RUN writes one)")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in pixels (default 1280)")
    parser.add_argument("--height", type=int, default=1000, help="how much of the page's top (default 1000)")
    parser.add_argument("--colours", type=int, default=256, help="palette size of the PNG (default 256)")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        raise SystemExit(f"report_screenshot: no such file: {args.report}")
    png = small_png(screenshot(args.report, args.width, args.height), args.width, args.height, args.colours)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(png)
    print(f"{args.output}: {args.width}x{args.height}, {len(png) / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
