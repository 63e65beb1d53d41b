"""`alignlab review --ui`: a local web form (FastAPI on uvicorn, bound to 127.0.0.1 only) where a person fills in or
uploads a system card and sees its review. A malformed card gets HTTP 400 with the same one line the command prints.

The form never runs a card's agent command, a policy file or a remote model endpoint: a page on another site could post
a card to a local server, so the form measures only what is safe to measure on request (bundled guard policies, local
models) and refuses posts whose Origin is another site (cross-site request forgery).
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse

from alignlab.review import render
from alignlab.review.card import CardError, parse_card
from alignlab.review.engine import review

HOST = "127.0.0.1"
MAX_UPLOAD = 1 << 20

FORM = """<h1>alignlab review</h1>
<p class="meta">Fill in or upload a system card (YAML; the schema is schemas/system-card.schema.json) and review it.</p>
<form id="card-form" method="post" action="/review" enctype="multipart/form-data">
<p><label>Upload a card: <input type="file" id="card-file" name="card_file" accept=".yaml,.yml"></label></p>
<p><label>or write it here:<br><textarea id="card-text" name="card_text" rows="24" cols="110">{text}</textarea>
</label></p>
<p><label><input type="checkbox" id="measure" name="measure" value="1"> measure what can be measured here
(bundled guard policies, local models; slower)</label></p>
<p><button type="submit" id="submit">Review</button></p></form>"""


def _page(inner: str, title: str = "alignlab review") -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{render.CSS}</style></head><body>{inner}</body></html>"
    )


def _safe_for_web(card: Any) -> Any:
    """The card with the evidence the form will not run removed (agent command, policy files, remote endpoints)."""
    ev = dict(card.data.get("evidence") or {})
    ev.pop("agent_command", None)
    ev.pop("workspace", None)
    if Path(str(ev.get("guard_policy", ""))).suffix:
        ev.pop("guard_policy")
    if str(ev.get("model", "")).startswith("openai:"):
        ev.pop("model")
    return dataclasses.replace(card, data={**card.data, "evidence": ev}, base=None)


def make_app(prefill: str = "") -> FastAPI:
    app = FastAPI(title="alignlab review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def form() -> str:
        return _page(FORM.format(text=html.escape(prefill)))

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.post("/review", response_class=HTMLResponse)
    async def review_post(
        request: Request, card_text: str = Form(""), measure: str = Form(""), card_file: UploadFile | None = File(None)
    ) -> HTMLResponse:
        origin = request.headers.get("origin")
        if origin and origin not in (f"http://{request.url.netloc}", "null"):
            return HTMLResponse(
                _page(f"<p id='error' class='err'>refused: a post from another site ({html.escape(origin)})</p>"),
                status_code=403,
            )
        name = "form"
        if card_file is not None and card_file.filename:
            raw = await card_file.read(MAX_UPLOAD + 1)
            name = Path(card_file.filename).name or "upload"
            if len(raw) > MAX_UPLOAD:
                return _error(f"{name}: larger than {MAX_UPLOAD} bytes (a system card is a short YAML file)")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return _error(f"{name}:1: not UTF-8 text (a system card is a YAML file)")
        else:
            text = card_text
        if not text.strip():
            return _error("no card given: upload a YAML file or write the card in the text box")
        try:
            card = parse_card(text, name)
        except CardError as exc:
            return _error(str(exc))
        result = review(_safe_for_web(card), measure=bool(measure))
        back = "<p><a href='/'>Review another card</a></p>"
        return HTMLResponse(_page(back + render.body(result) + back, f"alignlab review: {card.name}"))

    return app


def _error(message: str) -> HTMLResponse:
    body = f"<p id='error' class='err'>error: {html.escape(message)}</p><p><a href='/'>Back to the form</a></p>"
    return HTMLResponse(
        _page(body, "alignlab review: error"),
        status_code=400,
        headers={"X-Error": message[:500].encode("ascii", "replace").decode()},
    )


def serve(port: int = 8765, prefill: str = "") -> None:
    """Serve the form on 127.0.0.1:PORT until interrupted."""
    import uvicorn

    uvicorn.run(make_app(prefill), host=HOST, port=port, log_level="warning")
