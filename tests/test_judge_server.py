"""The judging server without a browser: concurrency, SIGKILL and restart, hostile requests, reading while
collecting. Loopback only; every wait is bounded. The scripted raters' judgments are labelled synthetic."""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_i2i.errors import DatasetError, I2IInputError
from pytest_i2i.judge import JudgeServer, load_tasks, make_perturbation_2afc
from pytest_i2i.judge.records import DATA_NAME, read_rows
from pytest_i2i.validation.judgments import load_judgments

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # metrics on tiny images: threads only add contention


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory):
    """Six 2AFC triplets with known answers (three bundled photos at 48 px), two repeated: 8 slots per rater."""
    return make_perturbation_2afc(tmp_path_factory.mktemp("judge") / "tasks", n_images=3, size=48,
                                  ops=("gaussian_blur", "jpeg"), repeats=2, seed=2).parent


@pytest.fixture
def server(tasks_dir, tmp_path):
    with JudgeServer(tasks_dir, tmp_path / "out", port=0, synthetic=True, metrics=("l1", "psnr"),
                     n_resamples=200) as srv:
        yield srv


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
            ) -> tuple[int, dict | bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        if body is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        res = conn.getresponse()
        data = res.read()
        kind = res.getheader("Content-Type", "")
        return res.status, (json.loads(data) if kind.startswith("application/json") else data), dict(res.getheaders())
    finally:
        conn.close()


def post(port: int, obj, **headers) -> tuple[int, dict]:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    status, data, _ = request(port, "POST", "/api/judgments", body, {"Content-Type": "application/json", **headers})
    return status, data


def gold_answer(tasks, slot) -> str:
    return "left" if slot.left == tasks.items[slot.task]["gold"] else "right"


def lines(out: Path) -> list[dict]:
    rows, torn = read_rows(out / DATA_NAME)
    assert torn == b""
    return [r for _, r in rows]


# -- concurrency ------------------------------------------------------------------------------------
def test_concurrent_raters_lose_and_duplicate_nothing(server, tasks_dir):
    tasks = load_tasks(tasks_dir)
    raters = [f"r{k}" for k in range(6)]
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2 * len(raters))

    def work(rater: str) -> None:  # two threads per rater post the same schedule at once: one write each
        got = []
        barrier.wait(timeout=10)
        for slot in tasks.schedule(rater):
            status, data = post(server.port, {"rater": rater, "task": slot.task, "occurrence": slot.occurrence,
                                              "answer": gold_answer(tasks, slot)})
            got.append(status)
        with lock:
            statuses.extend(got)

    threads = [threading.Thread(target=work, args=(r,)) for r in raters for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    n = len(raters) * tasks.n_slots()
    assert sorted(set(statuses)) == [200, 201] and statuses.count(201) == n and statuses.count(200) == n
    rows = lines(server.store.out)
    assert len(rows) == n and len({r["item"] for r in rows}) == n
    js = load_judgments(server.store.out)
    assert len(js.table) == n and set(js.table["h"]) <= {0.0, 1.0}
    status = server.status(ranking=False)
    assert all(r["n"] == tasks.n_slots() and r["gold"]["agreement"] == 1.0 for r in status["raters"].values())
    assert status["agreement"]["krippendorff_alpha"]["nominal"] == 1.0


# -- crash and restart ------------------------------------------------------------------------------
class Served:
    """A ``i2i judge serve`` subprocess; its stdout and stderr lines are collected by reader threads."""

    def __init__(self, tasks_dir: Path, out: Path):
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-m", "pytest_i2i.cli", "judge", "serve", str(tasks_dir),
                                      "--out", str(out), "--port", "0", "--synthetic"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, text=True)
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=lambda: [self.stdout.put(x) for x in self.proc.stdout], daemon=True).start()
        threading.Thread(target=lambda: [self.stderr.append(x) for x in self.proc.stderr], daemon=True).start()
        deadline = time.monotonic() + 120
        seen = []
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                line = self.stdout.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith("judging page: "):
                self.port = int(line.split(":")[-1].strip().rstrip("/"))
                return
        self.proc.kill()
        raise AssertionError(f"the server did not start: {''.join(seen)} {''.join(self.stderr)}")

    def stderr_text(self, expected: str, timeout: float = 30.0) -> str:
        """The stderr read so far, once it contains ``expected`` or after ``timeout`` seconds: the
        reader thread of stderr may still be behind the stdout line that said the server is up."""
        deadline = time.monotonic() + timeout
        while expected not in "".join(self.stderr) and time.monotonic() < deadline:
            time.sleep(0.05)
        return "".join(self.stderr)


def test_sigkill_mid_session_loses_nothing_and_duplicates_nothing(tasks_dir, tmp_path):
    tasks = load_tasks(tasks_dir)
    out = tmp_path / "out"
    schedule = tasks.schedule("ann")
    served = Served(tasks_dir, out)
    proc, port = served.proc, served.port
    try:
        for slot in schedule[:5]:
            status, data = post(port, {"rater": "ann", "task": slot.task, "occurrence": slot.occurrence,
                                       "answer": gold_answer(tasks, slot)})
            assert status == 201, data
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(lines(out)) == 5
    with open(out / DATA_NAME, "ab") as f:  # a write cut by a crash: never acknowledged
        f.write(b'{"item": "t0003@ann", "refer')
    served = Served(tasks_dir, out)
    proc, port = served.proc, served.port
    try:
        assert "cut an unfinished last line" in served.stderr_text("cut an unfinished last line")
        status, data, _ = request(port, "GET", "/api/next?rater=ann")
        assert status == 200 and data["done"] == 5 and data["slot"]["task"] == schedule[5].task
        slot = schedule[2]  # a page that retries an acknowledged answer after the restart
        status, data = post(port, {"rater": "ann", "task": slot.task, "occurrence": slot.occurrence,
                                   "answer": gold_answer(tasks, slot)})
        assert status == 200 and data["duplicate"] is True
        for slot in schedule[5:]:
            assert post(port, {"rater": "ann", "task": slot.task, "occurrence": slot.occurrence,
                               "answer": gold_answer(tasks, slot)})[0] == 201
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    rows = lines(out)
    assert len(rows) == len(schedule) and len({r["item"] for r in rows}) == len(schedule)
    js = load_judgments(out)
    assert js.synthetic and len(js.table) == len(schedule)


def test_a_second_server_on_the_same_folder_is_refused(server, tasks_dir):
    with pytest.raises(DatasetError, match="in use by another i2i judge serve"):
        JudgeServer(tasks_dir, server.store.out, port=0, synthetic=True)


# -- hostile requests ---------------------------------------------------------------------------------
def test_malformed_posts_get_a_clear_4xx_and_write_nothing(server, tasks_dir):
    tasks = load_tasks(tasks_dir)
    port = server.port
    slot = tasks.schedule("ann")[0]
    not_repeated = next(t for t in tasks.items if t not in tasks.repeats)
    ok = {"rater": "ann", "task": slot.task, "occurrence": slot.occurrence, "answer": "left"}
    data_file = server.store.out / DATA_NAME
    cases = [
        (lambda: request(port, "POST", "/api/judgments", None, {"Content-Type": "application/json"}), 411, "Content-Length"),
        (lambda: request(port, "POST", "/api/judgments", b"", {"Content-Type": "application/json",
                                                                "Content-Length": "5000"}), 413, "at most 4096"),
        (lambda: request(port, "POST", "/api/judgments", b"x", {"Content-Type": "application/json",
                                                                 "Content-Length": "-1"}), 400, "negative"),
        (lambda: request(port, "POST", "/api/judgments", json.dumps(ok).encode(), {"Content-Type": "text/plain"}),
         415, "application/json"),
        (lambda: post(port, b"{"), 400, "not valid JSON"),
        (lambda: post(port, b"\xff\xfe"), 400, "not valid JSON"),
        (lambda: post(port, b'{"rater": "ann", "task": "t0001", "occurrence": NaN, "answer": "left"}'), 400,
         "not valid JSON"),
        (lambda: post(port, [ok]), 400, "JSON object"),
        (lambda: post(port, {k: v for k, v in ok.items() if k != "answer"}), 400, "missing answer"),
        (lambda: post(port, {**ok, "weight": 2}), 400, "unknown weight"),
        (lambda: post(port, {**ok, "task": "t9999"}), 404, "unknown task id 't9999'"),
        (lambda: post(port, {**ok, "task": ["t0001"]}), 404, "unknown task id"),
        (lambda: post(port, {**ok, "task": not_repeated, "occurrence": 2}), 404, "no showing #2"),
        (lambda: post(port, {**ok, "occurrence": "1"}), 400, "occurrence must be 1 or 2"),
        (lambda: post(port, {**ok, "occurrence": True}), 400, "occurrence must be 1 or 2"),
        (lambda: post(port, {**ok, "answer": "both_bad"}), 400, "not allowed for a 2afc task"),
        (lambda: post(port, {**ok, "answer": 1}), 400, "not allowed"),
        (lambda: post(port, {**ok, "rater": "../ann"}), 400, "rater name"),
        (lambda: post(port, {**ok, "rater": ""}), 400, "rater name"),
        (lambda: post(port, {**ok, "rater": 7}), 400, "rater name"),
        (lambda: request(port, "POST", "/api/status", b"{}", {"Content-Type": "application/json"}), 405, "cannot POST"),
        (lambda: request(port, "POST", "/nope", b"{}", {"Content-Type": "application/json"}), 404, "cannot POST"),
        (lambda: request(port, "PUT", "/api/judgments", b"{}"), 405, "not allowed"),
        (lambda: request(port, "GET", "/api/next"), 400, "rater name"),
        (lambda: request(port, "GET", "/api/nope"), 404, "no route"),
        (lambda: request(port, "GET", "/api/judgments"), 404, "no route"),
    ]
    for k, (call, expected, text) in enumerate(cases):
        status, data = call()[:2]
        assert status == expected, f"case {k}: {status} {data}"
        assert isinstance(data, dict) and text in data["error"], f"case {k}: {data}"
        assert data_file.stat().st_size == 0, f"case {k} wrote to the data file"
    assert post(port, ok)[0] == 201
    size = data_file.stat().st_size
    status, data = post(port, {**ok, "answer": "right"})  # answers are final
    assert status == 409 and "already answered" in data["error"]
    assert data_file.stat().st_size == size and len(lines(server.store.out)) == 1


def test_traversal_and_unlisted_files_are_never_served(server, tasks_dir, tmp_path):
    tasks = load_tasks(tasks_dir)
    port = server.port
    secret = b"TOP-SECRET-CONTENT"
    (tasks_dir / "secret.txt").write_bytes(secret)
    link = tasks_dir / "images" / "outside.png"
    if not link.exists():
        link.symlink_to(tasks_dir / "secret.txt")
    listed = sorted(tasks.images)[0]
    attempts = [
        "/images/../tasks.json", "/images/%2e%2e/tasks.json", "/images/..%2ftasks.json", "/images/%2e%2e%2fsecret.txt",
        "/images/..%2f..%2f..%2f..%2fetc%2fpasswd", "/images//etc/passwd", "/images/%2Fetc%2Fpasswd",
        "/images/gold/../../secret.txt", "/images/gold%5c..%5c..%5csecret.txt", "/images/outside.png",
        "/images/gold/%00.png", "/images/" + listed.replace("/", "/./", 1), "/images/" + listed + "%00.txt",
        "/images/%ff%fe.png", "/static/../tasks.json", "/static/%2e%2e%2ftasks.json", "/%2e%2e/%2e%2e/etc/passwd",
        "/../secret.txt", "/images/" + "a/" * 1200,
    ]
    for path in attempts:
        status, data, headers = request(port, "GET", path)
        assert status in (400, 404, 414), f"{path}: {status}"
        assert secret not in (data if isinstance(data, bytes) else json.dumps(data).encode()), path
        assert b"root:" not in (data if isinstance(data, bytes) else b"")
    status, data, headers = request(port, "GET", "/images/" + listed)
    assert status == 200 and data == (tasks_dir / "images" / listed).read_bytes()
    assert headers["Content-Type"] == "image/png" and headers["X-Content-Type-Options"] == "nosniff"
    status, page, headers = request(port, "GET", "/")
    assert status == 200 and b"<script src=\"/static/judge.js\">" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]


def test_missing_images_are_refused_at_serve_time_naming_them(tasks_dir, tmp_path, capsys):
    from pytest_i2i.cli import main

    copy = tmp_path / "tasks"
    shutil.copytree(tasks_dir, copy, ignore=shutil.ignore_patterns("outside.png", "secret.txt"))
    gone = sorted(load_tasks(copy).images)[1:3]
    for rel in gone:
        (copy / "images" / rel).unlink()
    rc = main(["judge", "serve", str(copy), "--out", str(tmp_path / "out"), "--port", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "2 image(s) missing" in err and all(g in err for g in gone)
    assert not (tmp_path / "out").exists()


def test_foreign_host_headers_and_missing_tokens_are_refused(tasks_dir, tmp_path):
    with JudgeServer(tasks_dir, tmp_path / "a", port=0, synthetic=True) as srv:
        status, data, _ = request(srv.port, "GET", "/api/study", headers={"Host": "evil.example:80"})
        assert status == 403 and "DNS-rebinding" in data["error"]
        assert request(srv.port, "GET", "/api/study", headers={"Host": f"localhost:{srv.port}"})[0] == 200
    with pytest.raises(I2IInputError, match="needs a token"):
        JudgeServer(tasks_dir, tmp_path / "b", host="0.0.0.0", port=0)
    token = "s3cret-token-123"
    with JudgeServer(tasks_dir, tmp_path / "c", port=0, token=token, synthetic=True) as srv:
        assert request(srv.port, "GET", "/api/study")[0] == 401
        assert request(srv.port, "GET", "/api/study", headers={"X-I2I-Token": "wrong-token-xyz"})[0] == 401
        assert request(srv.port, "GET", "/api/study", headers={"X-I2I-Token": token})[0] == 200
        status, _, headers = request(srv.port, "GET", f"/?token={token}")
        assert status == 303 and headers["Location"] == "/" and "HttpOnly" in headers["Set-Cookie"]
        assert request(srv.port, "GET", "/api/study", headers={"Cookie": f"i2i_token={token}"})[0] == 200
        listed = sorted(srv.tasks.images)[0]
        assert request(srv.port, "GET", "/images/" + listed)[0] == 401
        assert post(srv.port, {"rater": "ann", "task": "t0001", "occurrence": 1, "answer": "left"})[0] == 401
        assert (srv.store.out / DATA_NAME).stat().st_size == 0
    with JudgeServer(tasks_dir, tmp_path / "d", port=0, raters=["ann"], synthetic=True) as srv:
        status, data, _ = request(srv.port, "GET", "/api/next?rater=bob")
        assert status == 403 and "not on this study's list" in data["error"]


# -- reading while collecting -------------------------------------------------------------------------
def test_validate_and_the_suite_read_the_folder_while_collection_goes_on(server, tasks_dir, tmp_path, pytester,
                                                                          capsys):
    from pytest_i2i.cli import main

    tasks = load_tasks(tasks_dir)
    out = server.store.out
    for rater in ("ann", "bob"):
        for slot in tasks.schedule(rater)[:3]:
            assert post(server.port, {"rater": rater, "task": slot.task, "occurrence": slot.occurrence,
                                      "answer": gold_answer(tasks, slot)})[0] == 201
    assert main(["validate", str(out), "--metrics", "l1", "--resamples", "200", "--out", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "validation.json").read_text())
    assert report["results"][0]["n"] == 6 and report["judgment_sets"][0]["synthetic"] is True
    capsys.readouterr()
    suite = ROOT / "suites" / "validation"
    for name in ("conftest.py", "test_judgments.py"):
        (pytester.path / name).write_text((suite / name).read_text())
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--i2i-judgments={out}")
    suite_tests = (suite / "test_judgments.py").read_text().count("\ndef test_")
    result.assert_outcomes(passed=suite_tests)
    slot = tasks.schedule("ann")[3]
    assert post(server.port, {"rater": "ann", "task": slot.task, "occurrence": slot.occurrence,
                              "answer": "cant_tell"})[0] == 201
    assert len(load_judgments(out).table) == 7
    assert main(["judge", "status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "7 judgment(s)" in text and "ann" in text and "bob" in text
    status = server.status(ranking=True)
    assert status["ranking"]["n_records"] == 7 and status["ranking"]["rows"][0]["n"] == 7
