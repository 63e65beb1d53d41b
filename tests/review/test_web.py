"""The review web form: a card uploaded in headless Chromium renders its review; a malformed upload gets HTTP 400 with
the same one line the command prints; posts from another site are refused; the server binds 127.0.0.1 only."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from alignlab.review.card import CardError, parse_card
from alignlab.review.web import HOST, make_app
from tests.reports.conftest import chrome, needs_chromium
from tests.review.conftest import card_path


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    return TestClient(make_app())


def test_upload_renders_the_review(client):
    with open(card_path("resume-screener"), "rb") as f:
        r = client.post("/review", files={"card_file": ("resume-screener.yaml", f, "application/x-yaml")})
    assert r.status_code == 200
    assert 'data-id="GM-1" data-severity="high"' in r.text and "Resume screener" in r.text


def test_malformed_upload_is_400_with_the_commands_line(client):
    bad = card_path("support-chatbot").read_text().replace("level: human-monitors", "level: sometimes")
    with pytest.raises(CardError) as err:
        parse_card(bad, "bad.yaml")
    r = client.post("/review", files={"card_file": ("bad.yaml", bad.encode(), "application/x-yaml")})
    assert r.status_code == 400
    assert r.headers["x-error"] == str(err.value)
    assert f"error: {str(err.value)}".replace("'", "&#x27;") in r.text
    r = client.post("/review", data={"card_text": "   "})
    assert r.status_code == 400 and "no card given" in r.text
    r = client.post("/review", files={"card_file": ("x.yaml", b"\xff\xfe", "application/x-yaml")})
    assert r.status_code == 400 and "x.yaml:1: not UTF-8" in r.headers["x-error"]


def test_cross_site_posts_are_refused_and_the_form_never_runs_commands(client):
    r = client.post(
        "/review",
        data={"card_text": card_path("coding-agent").read_text(), "measure": "1"},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403
    from alignlab.review.card import load_card
    from alignlab.review.web import _safe_for_web

    safe = _safe_for_web(load_card(card_path("coding-agent")))
    assert safe.evidence("agent_command") is None and safe.evidence("guard_policy") == "default-coding"
    assert HOST == "127.0.0.1"


@needs_chromium
def test_form_renders_an_uploaded_card_in_headless_chromium(tmp_path):
    import uvicorn
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(), host=HOST, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    driver = chrome(tmp_path / "profile")
    try:
        driver.get(f"http://{HOST}:{port}/")
        driver.find_element(By.ID, "card-file").send_keys(str(card_path("content-recommender")))
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "section#review")))
        assert driver.title == "alignlab review: Video feed recommender"
        findings = driver.find_elements(By.CSS_SELECTOR, "div.finding")
        ids = {f.get_attribute("data-id") for f in findings}
        assert {"RM-1", "RM-2"} <= ids and "GM-1" not in ids
        rm = next(f for f in findings if f.get_attribute("data-id") == "RM-1")
        assert "outrage" in rm.text and rm.is_displayed()
        badge = rm.find_element(By.CSS_SELECTOR, "span.sev-high")
        assert badge.value_of_css_property("background-color") in ("rgba(179, 38, 30, 1)", "rgb(179, 38, 30)")
        assert len(driver.find_elements(By.CSS_SELECTOR, "table.checklist tr")) > 10
        driver.get(f"http://{HOST}:{port}/")  # a malformed card typed into the form: the error line, no review
        driver.find_element(By.ID, "card-text").send_keys("name: [unclosed\n")
        driver.find_element(By.ID, "submit").click()
        err = WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "error")))
        assert err.text.startswith("error: form:") and "not valid YAML" in err.text
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(10)
