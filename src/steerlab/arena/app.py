"""The arena web service: FastAPI JSON API (OpenAPI docs at /docs) and server-rendered pages.

    app = create_app(scorer, ArenaStore("sqlite:///arena.db"), ArenaConfig())
    uvicorn.run(app, host="127.0.0.1", port=8000)

API: `POST /api/submissions` {handle, text} -> entry (201 scored, 202 pending, 200 duplicate);
`GET /api/submissions/{id}`; `GET /api/leaderboard?side=pro|anti&limit=N[&season=S]`;
`GET /api/seasons`; `POST /api/admin/submissions/{id}/hide|unhide` (Bearer admin token);
`GET /health`. Every rejection is JSON `{"error": {"code", "message", "field"?}}`.
Pages: `/` (form and both boards), `/board/{side}`, `/entries/{id}`, `/about`. No JavaScript;
Jinja2 autoescaping is on for every template, so user text is always escaped.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Literal, Optional

import jinja2
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from steerlab import __version__
from steerlab.arena.scoring import ArenaScorer
from steerlab.arena.service import ArenaConfig, ArenaService
from steerlab.arena.storage import ArenaStore, Entry
from steerlab.arena.validation import SubmissionRejected

log = logging.getLogger("steerlab.arena")
HERE = FilePath(__file__).parent
MAX_ID = 2**31 - 1
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")  # FastAPI's own doc pages load their JS from a CDN
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; script-src 'none'; style-src 'self'; frame-ancestors 'none'"),
]


class SubmissionIn(BaseModel):
    handle: str = Field(description="your name on the board: 1-32 of A-Z a-z 0-9 _ . - (starting with a letter or digit)")
    text: str = Field(description="the prefix to score; no control characters, length capped in characters and tokens")


class EntryOut(BaseModel):
    id: int
    season: int
    handle: str
    text: str
    status: Literal["pending", "scored", "failed"]
    score: Optional[float] = None
    spec_z: Optional[float] = None
    shifts: Optional[list[float]] = None
    error: Optional[str] = None
    hidden: bool
    created: Optional[str] = None
    scored_at: Optional[str] = None
    duplicate: bool = False
    url: str


class BoardRow(BaseModel):
    rank: int
    id: int
    handle: str
    text: str
    score: float
    spec_z: Optional[float] = None


class BoardOut(BaseModel):
    side: Literal["pro", "anti"]
    season: int
    entries: list[BoardRow]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: Optional[str] = None
    retry_after: Optional[int] = None


class ErrorOut(BaseModel):
    error: ErrorBody


def _error_responses(*codes: int) -> dict:
    return {code: {"model": ErrorOut} for code in codes}


class BodyLimit:
    """ASGI middleware: a request body over max_bytes is answered 413 before it is parsed."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_big = JSONResponse(
            {"error": {"code": "body_too_large", "message": f"request body over {self.max_bytes} bytes"}}, status_code=413
        )
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await too_big(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = SECURITY_HEADERS if scope.get("path") not in DOCS_PATHS else SECURITY_HEADERS[:3]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await too_big(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _entry_out(entry: Entry, duplicate: bool = False) -> dict:
    data = entry.to_json()
    data["duplicate"] = duplicate
    data["url"] = f"/entries/{entry.id}"
    return data


def _error(status: int, code: str, message: str, field: Optional[str] = None, retry_after: Optional[int] = None) -> JSONResponse:
    rejection = SubmissionRejected(status, code, message, field, retry_after)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(rejection.to_json(), status_code=status, headers=headers)


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True, undefined=jinja2.StrictUndefined
    )
    environment.filters["signed"] = lambda value, digits=5: "" if value is None else f"{value:+.{digits}f}"
    return Jinja2Templates(env=environment)


def create_app(scorer: ArenaScorer, store: ArenaStore, config: Optional[ArenaConfig] = None) -> FastAPI:
    """The ASGI app; its lifespan starts the scoring worker, which first scores leftover pending entries."""
    config = config or ArenaConfig()
    service = ArenaService(scorer, store, config)
    templates = _templates()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        service.worker.start()
        try:
            yield
        finally:
            await asyncio.to_thread(service.worker.stop)

    app = FastAPI(
        title=config.title,
        version=__version__,
        description="Submit a short text; it is prepended to neutral probe prompts and ranked by how far it moves "
        "the model's last-token residual along a steering direction. See /about.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def client_ip(request: Request) -> str:
        if config.trust_forwarded:
            forwarded = request.headers.get("x-forwarded-for", "")
            if forwarded.strip():
                return forwarded.split(",")[0].strip()
        return request.client.host if request.client else "unknown"

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith(("/api/", "/health")) and "text/html" in request.headers.get("accept", "")

    @app.exception_handler(SubmissionRejected)
    async def rejected(request: Request, error: SubmissionRejected):
        if wants_html(request):
            return page("error.html", request, {"message": error.message}, error.status)
        return _error(error.status, error.code, error.message, error.field, error.retry_after)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problems = []
        field = None
        for item in error.errors()[:5]:
            location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path"))
            field = field or location or None
            problems.append(f"{location or 'request'}: {item.get('msg', 'invalid')}")
        message = "; ".join(problems) or "invalid request"
        if wants_html(request):
            return page("error.html", request, {"message": message}, 422)
        return _error(422, "invalid_request", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        message = str(error.detail)
        if wants_html(request):
            return page("error.html", request, {"message": message}, error.status_code)
        return _error(error.status_code, "http_" + str(error.status_code), message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception):
        log.exception("arena: unhandled error on %s", request.url.path)
        return _error(500, "internal_error", "the server hit an internal error; it has been logged")

    def page(name: str, request: Request, context: dict, status: int = 200) -> HTMLResponse:
        base = {"title": config.title, "season": service.season, "version": __version__}
        return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

    def board_rows(season_id: int, side: str, limit: int) -> list[dict]:
        return [
            {"rank": rank, "id": e.id, "handle": e.handle, "text": e.text, "score": e.score, "spec_z": e.spec_z}
            for rank, e in enumerate(store.leaderboard(season_id, side, limit), start=1)
        ]

    def season_or_404(season: Optional[int]) -> int:
        if season is None:
            return service.season.id
        if store.season(season) is None:
            raise SubmissionRejected(404, "season_not_found", f"season {season} does not exist; see /api/seasons")
        return season

    # JSON API
    @app.get("/health", tags=["service"], responses={503: {"description": "the scoring worker is not running"}})
    def health():
        body = {
            "status": "ok" if service.worker.alive else "degraded",
            "season": service.season.id,
            "model": scorer.model_name,
            "layer": scorer.layer,
            "pending": store.count_pending(service.season.id),
            "worker_alive": service.worker.alive,
        }
        return JSONResponse(body, status_code=200 if service.worker.alive else 503)

    @app.post(
        "/api/submissions", tags=["arena"], response_model=EntryOut, status_code=201,
        responses={200: {"model": EntryOut, "description": "duplicate: the existing entry"},
                   202: {"model": EntryOut, "description": "accepted, still pending"},
                   **_error_responses(413, 422, 429, 503)},
    )
    async def submit(body: SubmissionIn, request: Request):
        outcome = await service.submit(body.handle, body.text, client_ip(request))
        return JSONResponse(_entry_out(outcome.entry, outcome.duplicate), status_code=outcome.status_code)

    @app.get("/api/submissions/{entry_id}", tags=["arena"], response_model=EntryOut, responses=_error_responses(404, 422))
    def get_submission(entry_id: int = Path(ge=1, le=MAX_ID)):
        entry = store.entry(entry_id)
        if entry is None:
            raise SubmissionRejected(404, "entry_not_found", f"entry {entry_id} does not exist")
        if entry.hidden:
            raise SubmissionRejected(404, "entry_hidden", f"entry {entry_id} was hidden by a moderator")
        return _entry_out(entry)

    @app.get("/api/leaderboard", tags=["arena"], response_model=BoardOut, responses=_error_responses(404, 422))
    def leaderboard(
        side: Literal["pro", "anti"] = Query(description="pro: highest score first; anti: lowest first"),
        limit: int = Query(20, ge=1, le=100),
        season: Optional[int] = Query(None, ge=1, le=MAX_ID, description="season id (default: the current one)"),
    ):
        season_id = season_or_404(season)
        return {"side": side, "season": season_id, "entries": board_rows(season_id, side, limit)}

    @app.get("/api/seasons", tags=["arena"])
    def list_seasons() -> list[dict]:
        return [
            {"id": s.id, "name": s.name, "model": s.model, "layer": s.layer, "probe_set": s.probe_set,
             "direction": s.direction_name, "direction_hash": s.direction_hash, "active": s.active}
            for s in store.seasons()
        ]

    def moderate(entry_id: int, hidden: bool, authorization: Optional[str]):
        service.check_admin(authorization)
        entry = store.set_hidden(entry_id, hidden)
        if entry is None:
            raise SubmissionRejected(404, "entry_not_found", f"entry {entry_id} does not exist")
        return _entry_out(entry)

    @app.post("/api/admin/submissions/{entry_id}/hide", tags=["admin"], response_model=EntryOut,
              responses=_error_responses(401, 403, 404))
    def hide(entry_id: int = Path(ge=1, le=MAX_ID), authorization: Optional[str] = Header(None)):
        return moderate(entry_id, True, authorization)

    @app.post("/api/admin/submissions/{entry_id}/unhide", tags=["admin"], response_model=EntryOut,
              responses=_error_responses(401, 403, 404))
    def unhide(entry_id: int = Path(ge=1, le=MAX_ID), authorization: Optional[str] = Header(None)):
        return moderate(entry_id, False, authorization)

    # pages
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, season: Optional[int] = Query(None, ge=1, le=MAX_ID)):
        season_id = season_or_404(season)
        return page("index.html", request, {
            "shown_season": store.season(season_id), "seasons": store.seasons(),
            "pro": board_rows(season_id, "pro", 20), "anti": board_rows(season_id, "anti", 20),
            "form_error": None, "form": {"handle": "", "text": ""}, "limits": config.limits,
        })

    @app.post("/submit", response_class=HTMLResponse, include_in_schema=False)
    async def submit_form(request: Request):
        form = await request.form()
        handle, text = form.get("handle"), form.get("text")
        try:
            outcome = await service.submit(handle, text, client_ip(request))
        except SubmissionRejected as error:
            headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
            season_id = service.season.id
            response = page("index.html", request, {
                "shown_season": service.season, "seasons": store.seasons(),
                "pro": board_rows(season_id, "pro", 20), "anti": board_rows(season_id, "anti", 20),
                "form_error": error.message, "limits": config.limits,
                "form": {"handle": handle if isinstance(handle, str) else "", "text": text if isinstance(text, str) else ""},
            }, error.status)
            if headers:
                response.headers.update(headers)
            return response
        return RedirectResponse(f"/entries/{outcome.entry.id}", status_code=303)

    @app.get("/board/{side}", response_class=HTMLResponse, include_in_schema=False)
    def board_page(request: Request, side: Literal["pro", "anti"], limit: int = Query(100, ge=1, le=500),
                   season: Optional[int] = Query(None, ge=1, le=MAX_ID)):
        season_id = season_or_404(season)
        return page("board.html", request, {"side": side, "rows": board_rows(season_id, side, limit),
                                             "shown_season": store.season(season_id)})

    @app.get("/entries/{entry_id}", response_class=HTMLResponse, include_in_schema=False)
    def entry_page(request: Request, entry_id: int = Path(ge=1, le=MAX_ID)):
        entry = store.entry(entry_id)
        if entry is None or entry.hidden:
            return page("error.html", request, {"message": f"entry {entry_id} does not exist or was hidden"}, 404)
        probes = scorer.probes if entry.season_id == service.season.id else [None] * len(entry.shifts or [])
        rows = []
        if entry.shifts:
            scale = max(abs(value) for value in entry.shifts) or 1.0
            for index, (probe, shift) in enumerate(zip(probes, entry.shifts)):
                rows.append({"index": index + 1, "probe": probe, "shift": shift,
                             "width": round(50 * abs(shift) / scale, 1), "positive": shift >= 0})
        return page("entry.html", request, {"entry": entry, "rows": rows, "entry_season": store.season(entry.season_id)})

    @app.get("/about", response_class=HTMLResponse, include_in_schema=False)
    def about(request: Request):
        return page("about.html", request, {"scorer": scorer.describe(), "limits": config.limits, "rates": config.rates,
                                             "probes": scorer.probes})

    return app
