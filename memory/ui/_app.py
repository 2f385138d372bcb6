"""The pages of `tiermem ui`: a Starlette app over any `MemoryAPI` (a local home, a shared
one, or a `tiermem serve` by URL), server-rendered with Jinja2, read-only unless built with
`allow_changes`.

Stored text is hostile input: every value reaches the page through Jinja2's autoescaping
(HTML and SVG alike), and the Content-Security-Policy allows no script at all, so a fact
that holds `<script>` shows as text and could not run if an escape were ever missed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .._contract import MemoryAPI
from .._errors import FactNotFound, InvalidInput, TieredMemoryError, UnknownUser
from . import _views as views

AUTH_COOKIE = "tiermem_ui"
# No script, no external anything: a stored '<script>' that escaped the templates still could not run.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
MAX_TEXT = 20_000  # a search query or context message typed into a form


class UIConfig:
    """What a page needs besides the memory: whether it may change anything, the key a
    browser must present, the per-process secret behind the CSRF tokens, and the disk use of
    the home's tiers (local homes only)."""

    def __init__(self, *, allow_changes: bool, api_key: str | None, disk: Callable[[], dict[str, int]] | None,
                 where: str):
        self.allow_changes = allow_changes
        self.api_key = api_key
        self.disk = disk
        self.where = where
        self.secret = secrets.token_bytes(32)

    def csrf_token(self) -> str:
        return hmac.new(self.secret, b"csrf", hashlib.sha256).hexdigest()

    def auth_cookie(self) -> str:
        # Not the key itself: a cookie a browser keeps should not be the credential a script uses.
        assert self.api_key is not None
        return hmac.new(self.api_key.encode(), b"tiermem-ui-cookie", hashlib.sha256).hexdigest()


def _templates() -> Jinja2Templates:
    folder = str(resources.files("tiermem.ui").joinpath("templates"))
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html", "svg"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = views.when
    env.filters["printable"] = _printable
    env.filters["compact_json"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    return Jinja2Templates(env=env)


def _printable(text: Any) -> str:
    """Control characters shown as their code points (⟨U+001B⟩): a stored escape sequence or
    NUL must read as what it is, not vanish or reflow the page. Newlines and tabs stay."""
    return "".join(c if c.isprintable() or c in "\n\t" else f"⟨U+{ord(c):04X}⟩" for c in str(text))


class _Guard(BaseHTTPMiddleware):
    """The API key (when set) and the response headers every page carries."""

    def __init__(self, app: Any, config: UIConfig):
        super().__init__(app)
        self.config = config

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        key = self.config.api_key
        if key is not None and request.url.path not in ("/login",) and not request.url.path.startswith("/static/"):
            given = request.query_params.get("key")
            if given is not None and hmac.compare_digest(given.encode(), key.encode()):
                # A link with ?key= signs the browser in once; the key leaves the address bar.
                rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "key"])
                response: Response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
                response.set_cookie(AUTH_COOKIE, self.config.auth_cookie(), httponly=True, samesite="strict")
                return _headers(response)
            bearer = request.headers.get("authorization", "")
            cookie = request.cookies.get(AUTH_COOKIE, "")
            if not (hmac.compare_digest(cookie.encode(), self.config.auth_cookie().encode())
                    or hmac.compare_digest(bearer.encode(), f"Bearer {key}".encode())):
                return _headers(RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", status_code=303))
        return _headers(await call_next(request))


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"  # nothing to other sites; forms keep their Origin
    response.headers["Cache-Control"] = "no-store"  # pages show personal data
    return response


def create_app(memory: MemoryAPI, *, allow_changes: bool = False, api_key: str | None = None,
               allowed_hosts: list[str] | None = None, disk: Callable[[], dict[str, int]] | None = None) -> Starlette:
    """The UI over `memory`.

    Args:
        allow_changes: offer forgetting a fact, forgetting a user and export (each behind a
            confirmation and a CSRF token); without it every such route answers 403.
        api_key: required of every browser (once, as `?key=` or on the login page; then an
            HttpOnly cookie), as `tiermem serve` requires it of clients.
        allowed_hosts: the Host headers answered (a page on loopback answers only loopback
            names, so a web page elsewhere cannot reach it through DNS rebinding).
        disk: bytes per tier of the home, when it is local.
    """
    config = UIConfig(allow_changes=allow_changes, api_key=api_key, disk=disk, where=memory.location)
    pages = _Pages(memory, config, _templates())
    static = StaticFiles(directory=str(resources.files("tiermem.ui").joinpath("static")))
    routes = [
        Route("/", pages.users),
        Route("/user", pages.user),
        Route("/fact", pages.fact),
        Route("/turns", pages.turns),
        Route("/search", pages.search),
        Route("/context", pages.context),
        Route("/forget-fact", pages.forget_fact, methods=["GET", "POST"]),
        Route("/forget-user", pages.forget_user, methods=["GET", "POST"]),
        Route("/export", pages.export),
        Route("/login", pages.login, methods=["GET", "POST"]),
        Mount("/static", app=static, name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["*"]),
                  Middleware(_Guard, config=config)]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={
        TieredMemoryError: pages.memory_error,  # type: ignore[dict-item]
    })


class _Pages:
    def __init__(self, memory: MemoryAPI, config: UIConfig, templates: Jinja2Templates):
        self.memory = memory
        self.config = config
        self.templates = templates
        self._thresholds: dict[str, float] | None = None

    # -- helpers ------------------------------------------------------------------------------
    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.update(allow_changes=self.config.allow_changes, csrf=self.config.csrf_token(), where=self.config.where)
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    def thresholds(self) -> dict[str, float] | None:
        if self._thresholds is None:
            self._thresholds = dict(self.memory.health().get("page_in") or {})
        return self._thresholds or None

    async def memory_error(self, request: Request, exc: TieredMemoryError) -> Response:
        from ..serve._api import STATUS  # the served API's status per error class

        status = 403 if isinstance(exc, _Forbidden) else STATUS.get(type(exc).__name__, 500)
        return self.render(request, "error.html", status_code=status, kind=type(exc).__name__, message=str(exc))

    def _user(self, request: Request) -> str:
        user = request.query_params.get("u", "")
        if not user:
            raise InvalidInput("the page needs a user: ?u=USER_ID")
        return user

    def _changes_allowed(self) -> None:
        if not self.config.allow_changes:
            raise _Forbidden()

    async def _form(self, request: Request) -> dict[str, str]:
        """A change's form, after its CSRF token and origin are checked."""
        self._changes_allowed()
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise _Forbidden("the form came from another site")
        if not hmac.compare_digest(form.get("csrf", "").encode(), self.config.csrf_token().encode()):
            raise _Forbidden("the form's token is missing or stale: reload the page and try again")
        return form

    # -- pages --------------------------------------------------------------------------------
    def users(self, request: Request) -> Response:
        rows = []
        for user_id, valid, turns in sorted(self.memory.users()):
            last = self.memory.turns(user_id=user_id, limit=1, newest_first=True) if turns else []
            rows.append({"id": user_id, "facts": valid, "turns": turns, "last": last[0].created_at if last else None})
        disk = self.config.disk() if self.config.disk is not None else None
        return self.render(request, "users.html", users=rows, disk=disk, health=self.memory.health())

    def user(self, request: Request) -> Response:
        user = self._user(request)
        q = request.query_params
        show_invalid = q.get("invalid", "1") != "0"
        kind = q.get("kind") or None
        text = (q.get("q") or "").strip()
        as_of = _date(q.get("as_of"), "as_of")
        facts = self.memory.facts(user_id=user, include_invalid=True)
        shown = [f for f in facts if (show_invalid or f.is_valid) and (kind is None or f.kind == kind)
                 and (not text or text.casefold() in f.text.casefold())
                 and (as_of is None or f.valid_at(as_of))]
        by_id = {f.id: f for f in facts}
        replaced = {f.superseded_by: f for f in facts if f.superseded_by}
        return self.render(request, "user.html", user=user, facts=shown, all_count=len(facts), by_id=by_id,
                           replaced=replaced, timeline=views.timeline(shown), kind=kind or "", text=text,
                           as_of=q.get("as_of") or "", show_invalid=show_invalid,
                           valid_count=sum(f.is_valid for f in facts))

    def fact(self, request: Request) -> Response:
        user = self._user(request)
        fact = self.memory.get(request.query_params.get("id", ""), user_id=user)
        history = self.memory.history(fact.id, user_id=user)
        sources = self.memory.turns(user_id=user, refs=fact.sources, limit=100) if fact.sources else []
        missing = [r for r in fact.sources if r not in {t.ref for t in sources}]
        try:  # the replacement may have been forgotten since
            successor = self.memory.get(fact.superseded_by, user_id=user) if fact.superseded_by else None
        except FactNotFound:
            successor = None
        return self.render(request, "fact.html", user=user, fact=fact, history=history, sources=sources,
                           missing=missing, successor=successor)

    def turns(self, request: Request) -> Response:
        user = self._user(request)
        session = request.query_params.get("session") or None
        turns = self.memory.turns(user_id=user, session_id=session, limit=500)
        return self.render(request, "turns.html", user=user, session=session or "", turns=turns)

    def search(self, request: Request) -> Response:
        user = self._user(request)
        query = (request.query_params.get("q") or "").strip()[:MAX_TEXT]
        limit = _int(request.query_params.get("limit"), "limit", 10, 1, 100)
        hits, below = [], []
        if query:
            ranked = self.memory.search(query, user_id=user, limit=limit + 10)
            hits, below = ranked[:limit], ranked[limit:]
        scale = max((h.score for h in hits + below), default=0.0)
        thresholds = self.thresholds()
        rows = [{"hit": h, "bar": views.score_bar(h, scale), "verdict": views.page_in_verdict(h, thresholds)}
                for h in hits + below]
        return self.render(request, "search.html", user=user, query=query, limit=limit, rows=rows[:len(hits)],
                           below=rows[len(hits):], parts=views.PARTS, thresholds=thresholds,
                           scale_width=views.SCORE_WIDTH)

    def context(self, request: Request) -> Response:
        from ..claude._catalog import _table, model_info

        user = self._user(request)
        q = request.query_params
        message = (q.get("message") or "").strip()[:MAX_TEXT]
        budget = _int(q.get("budget"), "budget", 8000, 256, 1_000_000)
        session = q.get("session") or "default"
        system = q.get("system") or None
        models = sorted(_table()["models"])
        model = q.get("model") or ""
        if model and model not in models:
            raise InvalidInput(f"model must be one of {', '.join(models)}; got {model!r}")
        result = bar = costs = None
        if message:
            result = self.memory.context(message, user_id=user, session_id=session, system=system, budget=budget)
            info = model_info(model) if model else None
            bar = views.token_bar(result.report, cache_min=info.cache_min_tokens if info else None)
            prices = info.price.__dict__ if info is not None and info.price is not None else None
            costs = views.tier_costs(result.report, prices, bar.cacheable) if prices else None
        return self.render(request, "context.html", user=user, message=message, budget=budget, session=session,
                           system=system or "", model=model, models=models, result=result, bar=bar, costs=costs,
                           tiers=views.TIERS)

    async def forget_fact(self, request: Request) -> Response:
        self._changes_allowed()
        if request.method == "GET":
            user = self._user(request)
            fact = self.memory.get(request.query_params.get("id", ""), user_id=user)
            return self.render(request, "confirm_fact.html", user=user, fact=fact)
        form = await self._form(request)
        user, fact_id = form.get("u", ""), form.get("id", "")
        if form.get("confirm") != fact_id:
            raise InvalidInput("confirm the erasure on the confirmation page")
        event = self.memory.forget(fact_id, user_id=user, redact_turns=form.get("redact") == "1")
        return self.render(request, "forgot_fact.html", user=user, event=event)

    async def forget_user(self, request: Request) -> Response:
        self._changes_allowed()
        if request.method == "GET":
            user = self._user(request)
            counts = {u: (f, t) for u, f, t in self.memory.users()}
            if user not in counts:
                raise UnknownUser(f"no user {user!r} is stored")
            return self.render(request, "confirm_user.html", user=user, counts=counts[user])
        form = await self._form(request)
        user = form.get("u", "")
        if form.get("confirm") != user:
            raise InvalidInput("type the user id exactly to confirm the erasure")
        receipt = self.memory.forget_user(user)
        return self.render(request, "receipt.html", receipt=receipt)  # the user is gone: not named again

    def export(self, request: Request) -> Response:
        """Everything stored about one user, as one JSON document (what to hand a person who
        asks what is kept about them; `tiermem export` writes the importable format)."""
        self._changes_allowed()
        user = self._user(request)
        facts = self.memory.facts(user_id=user, include_invalid=True)
        turns, offset = [], 0
        while page := self.memory.turns(user_id=user, limit=5000, offset=offset):
            turns += page
            offset += len(page)
        document = {"format": "tiermem-ui-export", "exported_at": datetime.now(UTC).isoformat(), "user_id": user,
                    "facts": [f.model_dump(mode="json") for f in facts],
                    "history": {f.id: [e.model_dump(mode="json") for e in self.memory.history(f.id, user_id=user)]
                                for f in facts},
                    "turns": [t.model_dump(mode="json") for t in turns],
                    "files": [m.model_dump(mode="json") for m in self.memory.files(user_id=user)]}
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in user)[:64] or "user"
        return Response(json.dumps(document, ensure_ascii=False, indent=1), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="tiermem-{name}.json"'})

    async def login(self, request: Request) -> Response:
        if self.config.api_key is None:
            return RedirectResponse("/", status_code=303)
        target = request.query_params.get("next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # never a redirect to another site
        if request.method == "POST":
            form = await request.form()
            given = form.get("key")
            if isinstance(given, str) and hmac.compare_digest(given.encode(), self.config.api_key.encode()):
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(AUTH_COOKIE, self.config.auth_cookie(), httponly=True, samesite="strict")
                return response
            return self.render(request, "login.html", status_code=401, target=target, failed=True)
        return self.render(request, "login.html", target=target, failed=False)


class _Forbidden(TieredMemoryError):
    def __init__(self, message: str = "this UI is read-only: start it with `tiermem ui --allow-changes` to change memory"):
        super().__init__(message)


def _date(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a date (YYYY-MM-DD) or an ISO time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: str | None, what: str, default: int, low: int, high: int) -> int:
    if not value:
        return default
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, got {value!r}") from None
    if not low <= n <= high:
        raise InvalidInput(f"{what} must be from {low} to {high}, got {n}")
    return n
