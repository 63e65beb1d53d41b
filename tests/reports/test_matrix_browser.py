"""The technique x failure-mode matrix in the HTML report, opened in headless Chromium: every registered
technique is a row, every experiment with a slot a column, measured cells show benefit and tax with
paired intervals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alignlab.core import registry, runner
from alignlab.core.store import Store
from alignlab.experiments.interruptibility import InterruptibilityConfig
from alignlab.experiments.side_effects import SideEffectsConfig
from alignlab.experiments.spec_gaming import SpecGamingConfig
from alignlab.reports import html
from tests.reports.conftest import chrome, needs_chromium


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("matrix") / "runs"
    runner.run("spec-gaming", SpecGamingConfig(
        envs=("boat-race-v0", "absent-supervisor-v0"), optimizers=("value-iteration", "q-learning", "sarsa"),
        vi_horizons=(0,), td_episodes=(1000,),
        techniques=("quantilizer(q=0.3)", "relative-reachability", "safe-interruptibility-target")),
        seeds=3, workers=1, runs_dir=runs)
    runner.run("side-effects", SideEffectsConfig(
        envs=("side-effects-sokoban-noop-v0",), optimizers=("value-iteration", "q-learning"), td_episodes=(2000,),
        techniques=("relative-reachability", "attainable-utility", "quantilizer")), seeds=3, workers=1, runs_dir=runs)
    runner.run("interruptibility", InterruptibilityConfig(
        episodes=1500, techniques=("safe-interruptibility-target", "quantilizer")), seeds=3, workers=1, runs_dir=runs)
    with Store(runs, readonly=True) as store:
        page = html.render(store.records(), str(store.path))
    path = runs / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def test_matrix_lists_every_technique_and_failure_mode(report_path):
    page = report_path.read_text()
    assert 'id="technique-matrix"' in page
    rows = re.findall(r'<tr><td class="l"><a href="#technique-([a-z0-9-]+)">', page)
    assert rows == registry.names("technique")
    assert "benefit +" in page or "benefit -" in page


@needs_chromium
def test_matrix_renders_in_headless_chromium(report_path, tmp_path):
    from selenium.webdriver.common.by import By

    driver = chrome(tmp_path / "profile")
    try:
        driver.get(report_path.as_uri())
        matrix = driver.find_element(By.CSS_SELECTOR, "#technique-matrix table.matrix")
        headers = matrix.find_elements(By.CSS_SELECTOR, "thead th")
        rows = matrix.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) >= 8 and len(headers) - 1 >= 5, (len(rows), len(headers))
        measured = matrix.find_elements(By.CSS_SELECTOR, "td.ok")
        assert len(measured) >= 5
        for cell in measured:
            assert re.search(r"benefit [+-]\d+\.\d+ ± \d+\.\d+ · "
                             r"tax [+-]\d+\.\d+ ± \d+\.\d+ \(n=\d+\)", cell.text), cell.text
        assert matrix.find_elements(By.CSS_SELECTOR, "td.na")  # a technique without a slot there
        # the side-effects column: relative reachability measurably raises the intended return
        rr = matrix.find_element(By.CSS_SELECTOR, 'td[data-technique="relative-reachability-v0"]'
                                                  '[data-experiment="side-effects-v0"]')
        benefit = float(re.search(r"benefit ([+-]\d\.\d+)", rr.text).group(1))
        assert benefit > 0
        # each experiment's section has the paired with/without table
        section = driver.find_element(By.CSS_SELECTOR, 'section[data-experiment="side-effects-v0"] div.with-without')
        assert "alignment tax" in section.text and "all cells" in section.text
        driver.save_screenshot(str(tmp_path / "matrix.png"))
    finally:
        driver.quit()
