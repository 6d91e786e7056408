"""The judging page's HTTP server: standard library only (``http.server.ThreadingHTTPServer``).

Routes (every response is JSON except the pages, assets and images)::

    GET  /                       the judging page            GET /status   the live status page
    GET  /static/<asset>         the page's JS / CSS         GET /images/<path>  an image of the study
    GET  /api/study              name, kind, question, allowed answers, scale, slots per rater
    GET  /api/next?rater=NAME    progress and the first unanswered slot of the rater's schedule
    POST /api/judgments          {"rater", "task", "occurrence", "answer"} -> saved durably, next slot
    GET  /api/status[?ranking=1] per-rater counts, gold agreement, self-consistency, alpha, metric ranking

Safety: binds to 127.0.0.1 unless told otherwise, and another interface needs a token (sent as the
``X-I2I-Token`` header or the cookie the page sets after ``/?token=...``). On loopback, requests whose
``Host`` is not a loopback name are refused (DNS rebinding). Only the images the task manifest lists are
served, from its images root (anything else, traversal included, is a 404). Request bodies are at most
:data:`MAX_BODY` bytes of ``application/json``; a malformed post or an unknown task gets a 4xx with the
reason and writes nothing. Pages carry a strict Content-Security-Policy (no inline script, same origin only).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import socket
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pytest_i2i.errors import I2IInputError
from pytest_i2i.judge.status import MetricRanking, study_status
from pytest_i2i.judge.store import AlreadyJudged, JudgmentStore
from pytest_i2i.judge.tasks import ROLES, Slot, TaskSet, check_name, load_tasks

MAX_BODY = 4096
REQUEST_TIMEOUT_S = 20
TOKEN_COOKIE = "i2i_token"
STATIC = {"judge.js": "text/javascript; charset=utf-8", "judge.css": "text/css; charset=utf-8",
          "status.js": "text/javascript; charset=utf-8"}
PAGES = {"/": "index.html", "/status": "status.html"}
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                 ".webp": "image/webp", ".bmp": "image/bmp"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HTTPError(Exception):
    """An error answer: status code and message (sent as ``{"error": message}``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class JudgeServer:
    """A study served to raters; judgments go to ``out`` as they arrive (see :mod:`pytest_i2i.judge.store`).

    Args:
        tasks: a task manifest (``tasks.json`` or its folder), checked here: missing images and changed
            files are refused, naming them.
        out: the output folder (created; a judgment set in the project's format).
        host: the interface to bind (default loopback); any other needs ``token``.
        port: the port (0: any free port; see :attr:`url`).
        token: a shared secret every request must carry (required off loopback).
        raters: if given, only these rater names may judge.
        synthetic: label the collected judgments synthetic (scripted raters, tests, demos).
        metrics: metrics computed on the study's images for the live ranking (default:
            :func:`~pytest_i2i.judge.status.default_metrics`).

    Example:
        >>> srv = JudgeServer("tasks/", "out/")        # doctest: +SKIP
        >>> srv.start(); print(srv.url); srv.close()   # doctest: +SKIP
    """

    def __init__(self, tasks: str | os.PathLike | TaskSet, out: str | os.PathLike, *, host: str = "127.0.0.1",
                 port: int = 8765, token: str | None = None, raters: Sequence[str] | None = None,
                 synthetic: bool = False, metrics: Sequence[str] | None = None, n_resamples: int = 1000,
                 weights: str | None = None, verbose: bool = False):
        if token is not None and (not isinstance(token, str) or len(token) < 8 or not token.isprintable()
                                  or any(c in token for c in " ;,\"'\\")):
            raise I2IInputError("--token must be at least 8 printable characters without spaces, quotes, ';' or ','")
        if not is_loopback(host) and token is None:
            raise I2IInputError(f"--host {host}: serving beyond this machine needs a token (--token SECRET or "
                                "--token auto); raters then open the printed link")
        self.tasks = tasks if isinstance(tasks, TaskSet) else load_tasks(tasks)
        self.raters = None if raters is None else {check_name(r, "rater name") for r in raters}
        self.token = token
        self.host = host
        self.verbose = verbose
        self.assets = {name: (resources.files("pytest_i2i.judge") / "static" / name).read_bytes()
                       for name in (*STATIC, *PAGES.values())}
        self.store = JudgmentStore(out, self.tasks, synthetic=synthetic).open()
        try:
            self.ranking = MetricRanking(out, self.tasks, metrics, n_resamples=n_resamples, weights=weights,
                                         locked=self.store.read_locked)
            server_cls = _Server6 if ":" in host else _Server
            self.httpd = server_cls((host, port), _Handler)
        except BaseException:
            self.store.close()
            raise
        self.httpd.app = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={quote(self.token)}" if self.token else "")

    def start(self) -> JudgeServer:
        """Serve in a background thread (tests, notebooks); :meth:`close` stops it."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="i2i-judge", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.close()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()
        self.store.close()

    def __enter__(self) -> JudgeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- what the API returns -----------------------------------------------------------------------
    def study(self) -> dict[str, Any]:
        t = self.tasks
        return {"name": t.name, "kind": t.kind, "question": t.question, "answers": list(t.answers),
                "scale": t.scale.to_json() if t.scale else None, "n_slots": t.n_slots(),
                "raters_listed": self.raters is not None}

    def image_url(self, rel: str) -> str:
        return "/images/" + quote(rel)

    def slot_json(self, slot: Slot, index: int) -> dict[str, Any]:
        it = self.tasks.items[slot.task]
        images = {f: self.image_url(it[f]) for f in ("reference", "input") if f in it}
        if self.tasks.kind in ROLES:
            images["left"] = self.image_url(it[slot.left])
            images["right"] = self.image_url(it[slot.right])
        else:
            images["image"] = self.image_url(it["image"])
        return {"task": slot.task, "occurrence": slot.occurrence, "index": index,
                "instruction": it.get("instruction"), "images": images}

    def next_for(self, rater: str) -> dict[str, Any]:
        done, total, slot, index = self.store.progress(rater)
        out: dict[str, Any] = {"rater": rater, "done": done, "total": total, "finished": slot is None,
                               "slot": None if slot is None else self.slot_json(slot, index), "prefetch": []}
        if slot is not None:
            following = [s for s in self.store.schedule(rater)[index + 1:index + 3]]
            out["prefetch"] = sorted({u for s in following for u in self.slot_json(s, 0)["images"].values()})
        return out

    def check_rater(self, rater: Any) -> str:
        try:
            name = check_name(rater, "rater name")
        except I2IInputError as e:
            raise HTTPError(400, str(e)) from None
        if self.raters is not None and name not in self.raters:
            raise HTTPError(403, f"rater {name!r} is not on this study's list of raters")
        return name

    def post_judgment(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            raise HTTPError(400, "the body must be a JSON object {rater, task, occurrence, answer}")
        expected = {"rater", "task", "occurrence", "answer"}
        if set(body) != expected:
            missing, extra = sorted(expected - set(body)), sorted(set(body) - expected)
            raise HTTPError(400, "the body must have exactly the keys rater, task, occurrence, answer"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unknown {', '.join(extra)}" if extra else ""))
        rater = self.check_rater(body["rater"])
        task, occ = body["task"], body["occurrence"]
        if not isinstance(task, str) or task not in self.tasks.items:
            raise HTTPError(404, f"unknown task id {task!r}")
        if isinstance(occ, bool) or not isinstance(occ, int):
            raise HTTPError(400, f"occurrence must be 1 or 2, got {occ!r}")
        slot = self.store.find_slot(rater, task, occ)
        if slot is None:
            raise HTTPError(404, f"task {task!r} has no showing #{occ} in this study")
        answer = body["answer"]
        if self.tasks.kind == "rating" and isinstance(answer, str):
            raise HTTPError(400, f"a rating answer is a number on the scale, got {answer!r}")
        try:
            _, written = self.store.add(rater, slot, answer)
        except AlreadyJudged as e:
            raise HTTPError(409, str(e)) from None
        except I2IInputError as e:
            raise HTTPError(400, str(e)) from None
        except OSError as e:
            raise HTTPError(507, f"could not save the judgment ({e.strerror or e}); nothing was written") from None
        return (201 if written else 200), {"saved": True, "duplicate": not written, **self.next_for(rater)}

    def status(self, ranking: bool) -> dict[str, Any]:
        judgments = self.store.judgments()
        rank = self.ranking.compute(n_records=len(judgments)) if ranking and judgments else None
        if ranking and not judgments:
            rank = {"rows": [], "reason": "no judgments yet"}
        out = study_status(self.tasks, judgments, ranking=rank)
        out["warnings"] = list(self.store.warnings)
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "i2i-judge"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_S

    @property
    def app(self) -> JudgeServer:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.app.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # -- plumbing ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data, allow_nan=False).encode("utf-8"), "application/json; charset=utf-8",
                   headers)

    def _error(self, status: int, message: str) -> None:
        self.close_connection = True
        self._json(status, {"error": message, "status": status})

    def _guard(self, route: str, query: dict[str, list[str]]) -> dict[str, str] | None:
        """Host and token checks; returns extra headers (a cookie) or raises HTTPError."""
        app = self.app
        host = self.headers.get("Host")
        if is_loopback(app.host) and host is not None:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in LOOPBACK_NAMES:
                raise HTTPError(403, f"Host {host!r} refused: this server answers to loopback names only "
                                     "(DNS-rebinding protection)")
        if app.token is None:
            return None
        given = self.headers.get("X-I2I-Token") or _cookie(self.headers.get("Cookie", ""), TOKEN_COOKIE)
        if given is not None and hmac.compare_digest(given.encode(), app.token.encode()):
            return None
        if route in PAGES and query.get("token"):
            if hmac.compare_digest(query["token"][0].encode(), app.token.encode()):
                raise _Redirect(route, f"{TOKEN_COOKIE}={app.token}; HttpOnly; SameSite=Strict; Path=/")
        raise HTTPError(401, "this study needs its token: open the link printed by i2i judge serve "
                             "(http://HOST:PORT/?token=...)")

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        if len(self.path) > 2048:
            raise HTTPError(414, "URL too long")
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query, max_num_fields=8)

    def _handle(self, fn: Any) -> None:
        try:
            fn()
        except HTTPError as e:
            self._error(e.status, str(e))
        except _Redirect as r:
            self.send_response(303)
            self.send_header("Location", r.location)
            self.send_header("Set-Cookie", r.cookie)
            self.send_header("Content-Length", "0")
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except ValueError as e:  # e.g. parse_qs's field limit
            self._error(400, f"malformed request ({e})")

    # -- methods ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._handle(self._post)

    def _not_allowed(self) -> None:
        self._error(405, f"method {self.command} not allowed")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    def _get(self) -> None:
        route, query = self._route()
        headers = self._guard(route, query)
        app = self.app
        if route in PAGES:
            return self._send(200, app.assets[PAGES[route]], "text/html; charset=utf-8", headers)
        if route.startswith("/static/"):
            name = route[len("/static/"):]
            if name not in STATIC:
                raise HTTPError(404, f"no asset {name!r}")
            return self._send(200, app.assets[name], STATIC[name], {"Cache-Control": "no-cache"})
        if route.startswith("/images/"):
            return self._image(unquote(route[len("/images/"):], errors="strict"))
        if route == "/api/study":
            return self._json(200, app.study())
        if route == "/api/next":
            return self._json(200, app.next_for(app.check_rater((query.get("rater") or [None])[0])))
        if route == "/api/status":
            return self._json(200, app.status(ranking=(query.get("ranking") or ["0"])[0] == "1"))
        raise HTTPError(404, f"no route {route!r}")

    def _image(self, rel: str) -> None:
        from pytest_i2i.data.manifest import resolve_under_root
        from pytest_i2i.errors import DatasetError

        app = self.app
        if rel not in app.tasks.images:  # only what the study lists: no traversal, no other file
            raise HTTPError(404, "no such image in this study")
        try:
            path = resolve_under_root(rel, app.tasks.root, where="image request")
            data = path.read_bytes()
        except (DatasetError, OSError):
            raise HTTPError(404, "no such image in this study") from None
        self._send(200, data, CONTENT_TYPES[Path(rel).suffix.lower()], {"Cache-Control": "private, max-age=3600"})

    def _post(self) -> None:
        route, query = self._route()
        self._guard(route, query)
        if route != "/api/judgments":
            raise HTTPError(404 if not route.startswith("/api/") else 405, f"cannot POST to {route!r}")
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "send a Content-Length, not a chunked body")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "a Content-Length is required")
        try:
            n = int(length)
        except ValueError:
            raise HTTPError(400, f"Content-Length {length!r} is not a number") from None
        if n < 0:
            raise HTTPError(400, f"Content-Length {n} is negative")
        if n > MAX_BODY:
            raise HTTPError(413, f"body of {n} bytes; at most {MAX_BODY}")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(415, f"Content-Type must be application/json, got {ctype or 'none'!r}")
        raw = self.rfile.read(n)
        if len(raw) != n:
            raise HTTPError(400, f"body ended after {len(raw)} of {n} bytes")
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise HTTPError(400, f"the body is not valid JSON ({e})") from None
        status, data = self.app.post_judgment(body)
        self._json(status, data)


class _Redirect(Exception):
    def __init__(self, location: str, cookie: str):
        super().__init__(location)
        self.location, self.cookie = location, cookie


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, sep, v = part.strip().partition("=")
        if sep and k == name:
            return v
    return None
