"""The HTML report opened in headless Chromium: sections and figures really render."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignlab.core import runner
from alignlab.core.config import apply_overrides
from alignlab.core.store import Store
from alignlab.experiments.off_switch_game import OffSwitchConfig
from alignlab.reports import html
from tests.reports.conftest import chrome, needs_chromium



@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("report") / "runs"
    cfg = apply_overrides(OffSwitchConfig.quick(), ["sigmas=0.25,1,3", "betas=0,1", "mc_samples=2000"])
    runner.run("off-switch-game", cfg, seeds=2, workers=1, runs_dir=runs)
    runner.run("test-slow-grid", apply_overrides(
        __import__("tests.plugins.slow_grid", fromlist=["x"]).SlowGridConfig(),
        ["cells=4", "sleep_s=0", "fail_every=2"]),
        seeds=1, workers=1, runs_dir=runs)
    with Store(runs, readonly=True) as store:
        page = html.render(store.records(), str(store.path))
    path = runs / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def test_report_is_one_self_contained_file(report_path):
    page = report_path.read_text()
    assert "<script" not in page and "http://" not in page.replace('="http://www.w3.org/', "")
    assert "src=" not in page  # no external images, scripts or fonts: readable offline
    assert page.count('<section class="experiment"') == 2


@needs_chromium
def test_sections_and_figures_render_in_headless_chromium(report_path, tmp_path):
    from selenium.webdriver.common.by import By

    driver = chrome(tmp_path / "profile")
    try:
        driver.get(report_path.as_uri())
        assert driver.title == "alignlab report"
        sections = driver.find_elements(By.CSS_SELECTOR, "section.experiment")
        assert [s.get_attribute("data-experiment") for s in sections] == ["off-switch-game-v0", "test-slow-grid-v0"]
        off = sections[0]
        assert "Hadfield-Menell" in off.text and "Claims checked" in off.text
        svgs = off.find_elements(By.CSS_SELECTOR, "figure svg")
        assert len(svgs) >= 2
        for svg in svgs:
            box = driver.execute_script(
                "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", svg)
            assert box[0] > 100 and box[1] > 100, box
            # the plot has drawn content: lines and text, not an empty frame
            assert driver.execute_script("return arguments[0].querySelectorAll('path').length;", svg) > 10
            assert driver.execute_script("return arguments[0].querySelectorAll('text').length;", svg) > 5
        table_text = off.find_element(By.CSS_SELECTOR, "div.table").text
        assert "reference Delta" in table_text
        # the failing cells of the test grid are listed with their errors
        assert "Failed cells (2)" in sections[1].text
        # artifacts are linked, relative to the report, and the links resolve
        hrefs = [a.get_attribute("href") for a in sections[1].find_elements(By.CSS_SELECTOR, "details.artifacts a")]
        assert len(hrefs) == 2 and all(h.startswith("file://") and h.endswith("note.txt") for h in hrefs)
        assert all(Path(h[len("file://"):]).exists() for h in hrefs)
        driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
    finally:
        driver.quit()
