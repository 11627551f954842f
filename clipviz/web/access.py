"""Who may do what in the web app: run owners, an admin token, a read-only mode, same-origin
state changes, and the browser-side security headers.

* **Owners.** Every browser gets a random session cookie (``clipviz_owner``, HttpOnly,
  SameSite=Lax) on its first response; a run started from it records a hash of that value, and
  only a request with the same cookie may cancel the run.  The embedded default on 127.0.0.1 works as before: one browser, its
  own runs.
* **Admin.** A request with ``X-Clipviz-Token: <token>`` or ``Authorization: Bearer <token>``
  equal to ``$CLIPVIZ_ADMIN_TOKEN`` may cancel any run.
* **Read-only** (``CLIPVIZ_READ_ONLY=1``): the training page is not served and the runs API
  answers 403; the figure pages work.
* **Same origin.** A state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` (or,
  without one, ``Referer``) is another site is refused with 403: a cross-site form POST once
  cancelled a run.  Scripts that send neither header are not browsers and pass.
* **Headers.** CSP (scripts, styles, connections to this origin only; ``frame-ancestors
  'none'``), ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, g, jsonify, request

from .. import config
from ..config import SETTINGS

OWNER_COOKIE = "clipviz_owner"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RUNS_API = ("/api/runs", "/api/sweeps")
# Dash renders with inline scripts (its config, the page's clientside callbacks) and Plotly
# compiles some functions at run time: 'unsafe-inline' / 'unsafe-eval' for scripts, nothing else.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
       "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")


def owner() -> str | None:
    """The hash that identifies this request's browser session as a run owner."""
    raw = request.cookies.get(OWNER_COOKIE) or g.get("clipviz_new_owner")
    if not raw or len(raw) > 200:
        return None
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def session() -> tuple[str | None, bool]:
    """(owner, admin) of the current request; outside a request (a direct call from Python, as the
    tests make) no owner and admin, as for the library."""
    from flask import has_request_context

    if not has_request_context():
        return None, True
    return owner(), is_admin()


def is_admin() -> bool:
    """Does this request carry the admin token?"""
    token = config.admin_token()
    if not token:
        return False
    given = request.headers.get("X-Clipviz-Token", "")
    auth = request.headers.get("Authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin() -> bool:
    """Is this request from a page of this app (or of an allowed origin), or from no browser?"""
    sent = request.headers.get("Origin")
    if sent is None or sent == "null":
        ref = request.headers.get("Referer")
        if sent is None and ref is None:
            return True  # not a browser (curl, scripts, tests): nothing cross-site to fear
        sent = _origin_of(ref) if ref else "null"
    sent = (sent or "").rstrip("/").lower()
    own = request.host_url.rstrip("/").lower()
    return sent == own or sent in config.allowed_origins()


def init_access(server: Flask) -> None:
    """Install the checks and headers on ``server`` (before any view, after every response)."""
    read_only = config.read_only()

    @server.before_request
    def _guard():
        if read_only and request.path.startswith(RUNS_API):
            return jsonify(error="this clipviz is read-only: training runs are switched off "
                                 "(CLIPVIZ_READ_ONLY)"), 403
        if request.method in UNSAFE_METHODS and not same_origin():
            return jsonify(error="refused: the request comes from a page of another site"), 403
        if not request.cookies.get(OWNER_COOKIE):
            g.clipviz_new_owner = secrets.token_urlsafe(32)
        return None

    @server.after_request
    def _headers(resp):
        new = g.get("clipviz_new_owner")
        if new and not read_only:
            resp.set_cookie(OWNER_COOKIE, new, max_age=SETTINGS.owner_cookie_days * 86400,
                            httponly=True, samesite="Lax", secure=request.is_secure)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp
