"""Judge0 CE's API, endpoint by endpoint, as its documentation describes it (docs/compat.md), against
a real server; and each Judge0 status produced by a real program."""

from __future__ import annotations

import base64
import io
import time
import uuid
import zipfile
from typing import Any

import httpx
import pytest

from stockade.service.compat.judge0 import ALL_FIELDS, DEFAULT_FIELDS, STATUSES
from stockade.service.store import Store
from tests.service.live import LiveServer

PY = 71  # Judge0's id of Python 3
C = 50
WAIT = {"wait": "true"}


def submit(client: httpx.Client, body: dict[str, Any], **params: str) -> httpx.Response:
    return client.post("/judge0/submissions", json=body, params={"wait": "true", **params})


def finished(client: httpx.Client, token: str, **params: str) -> dict[str, Any]:
    """Poll a queued submission until it leaves In Queue / Processing (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = client.get(f"/judge0/submissions/{token}", params={"fields": "status"})
        assert r.status_code == 200, r.text
        if r.json()["status"]["id"] not in (1, 2):
            return dict(client.get(f"/judge0/submissions/{token}", params=params).json())
        time.sleep(0.05)
    raise AssertionError(f"submission {token} did not finish")


# -- submissions --------------------------------------------------------------------------------------


def test_wait_true_answers_201_with_the_default_fields(client: httpx.Client) -> None:
    r = submit(client, {"source_code": "print(input())", "language_id": PY, "stdin": "judge0"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == set(DEFAULT_FIELDS)
    assert out["stdout"] == "judge0\n" and out["stderr"] is None and out["compile_output"] is None
    assert out["status"] == {"id": 3, "description": "Accepted"}
    assert isinstance(out["time"], str) and float(out["time"]) >= 0
    assert isinstance(out["memory"], int) and out["memory"] > 0
    uuid.UUID(out["token"], version=4)


def test_wait_false_queues_and_the_token_reads_it_back(client: httpx.Client) -> None:
    r = client.post("/judge0/submissions", json={"source_code": "print(6*7)", "language_id": PY})
    assert r.status_code == 201, r.text
    assert list(r.json()) == ["token"]
    out = finished(client, r.json()["token"], fields="stdout,status_id,language_id,exit_code")
    assert out == {"stdout": "42\n", "status_id": 3, "language_id": PY, "exit_code": 0}


def test_base64_in_and_out(client: httpx.Client) -> None:
    b64 = lambda s: base64.b64encode(s).decode()  # noqa: E731
    body = {"source_code": b64(b"import sys; sys.stdout.buffer.write(b'\\xff' + sys.stdin.buffer.read())"),
            "language_id": PY, "stdin": b64(b"abc")}  # fmt: skip
    r = submit(client, body, base64_encoded="true")
    assert r.status_code == 201, r.text
    assert base64.b64decode(r.json()["stdout"]) == b"\xffabc"
    token = r.json()["token"]
    # Not UTF-8: Judge0 asks for base64 rather than mangle it.
    plain = client.get(f"/judge0/submissions/{token}")
    assert plain.status_code == 400 and "base64_encoded=true" in plain.json()["error"]
    again = client.get(f"/judge0/submissions/{token}", params={"base64_encoded": "true", "fields": "source_code"})
    assert base64.b64decode(again.json()["source_code"]).startswith(b"import sys")


def test_fields_star_has_every_attribute_and_unknown_fields_are_400(client: httpx.Client) -> None:
    r = submit(client, {"source_code": "print(1)", "language_id": PY}, fields="*")
    out = r.json()
    assert set(out) == set(ALL_FIELDS)
    assert out["language"]["id"] == PY and out["language"]["name"].startswith("Python 3 (3.")
    assert out["status_id"] == 3 and out["created_at"].endswith("Z") and out["finished_at"].endswith("Z")
    assert out["cpu_time_limit"] == 5.0 and out["wall_time_limit"] == 10.0 and out["memory_limit"] == 256 * 1024
    bad = client.get(f"/judge0/submissions/{out['token']}", params={"fields": "stdout,nope,worse"})
    assert bad.status_code == 400 and bad.json() == {"error": "invalid fields: [nope, worse]"}


def test_unknown_token_is_404_and_another_tenants_token_too(
    client: httpx.Client, keyed_server: tuple[LiveServer, dict[str, str]]
) -> None:
    assert client.get(f"/judge0/submissions/{uuid.uuid4()}").status_code == 404
    assert client.get("/judge0/submissions/not-a-token").status_code == 404
    server, keys = keyed_server
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/judge0/submissions", json={"source_code": "print(1)", "language_id": PY},
                   params=WAIT, headers={"X-Auth-Token": keys["acme"]})  # fmt: skip
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        assert c.get(f"/judge0/submissions/{token}", headers={"X-Auth-Token": keys["acme"]}).status_code == 200
        other = c.get(f"/judge0/submissions/{token}", headers={"X-Auth-Token": keys["python-only"]})
        assert other.status_code == 404


def test_batch_create_and_show(client: httpx.Client) -> None:
    subs = [{"source_code": f"print({i})", "language_id": PY} for i in range(3)]
    subs.append({"source_code": "x", "language_id": 9999})
    r = client.post("/judge0/submissions/batch", json={"submissions": subs})
    assert r.status_code == 201, r.text
    answers = r.json()
    assert answers[3] == {"language_id": ["language with id 9999 doesn't exist"]}
    tokens = [a["token"] for a in answers[:3]]
    for t in tokens:
        finished(client, t)
    missing = str(uuid.uuid4())
    shown = client.get("/judge0/submissions/batch", params={"tokens": ",".join([*tokens, missing]), "fields": "stdout"})
    assert shown.status_code == 200
    assert shown.json() == {"submissions": [{"stdout": "0\n"}, {"stdout": "1\n"}, {"stdout": "2\n"}, None]}


def test_batch_limits(client: httpx.Client) -> None:
    none_valid = client.post("/judge0/submissions/batch", json={"submissions": [{"language_id": PY}]})
    assert none_valid.status_code == 422 and none_valid.json() == [{"source_code": ["can't be blank"]}]
    empty = client.post("/judge0/submissions/batch", json={"submissions": []})
    assert empty.status_code == 400 and "at least one" in empty.json()["error"]
    many = client.post("/judge0/submissions/batch", json={"submissions": [{"language_id": PY}] * 21})
    assert many.status_code == 400 and "less than or equal to 20" in many.json()["error"]
    assert client.get("/judge0/submissions/batch").status_code == 400


def test_delete_returns_the_record_in_base64_then_it_is_gone(client: httpx.Client) -> None:
    token = submit(client, {"source_code": "print('bye')", "language_id": PY}).json()["token"]
    r = client.delete(f"/judge0/submissions/{token}", params={"fields": "stdout,status_id"})
    assert r.status_code == 200 and r.json() == {"stdout": base64.b64encode(b"bye\n").decode(), "status_id": 3}
    assert client.get(f"/judge0/submissions/{token}").status_code == 404


def test_validation_errors_are_422_by_field(client: httpx.Client) -> None:
    cases = {
        "language_id": ({"source_code": "x"}, "can't be blank"),
        "source_code": ({"language_id": PY}, "can't be blank"),
        "cpu_time_limit": ({"cpu_time_limit": 61}, "must be less than or equal to 60"),
        "wall_time_limit": ({"wall_time_limit": 0}, "must be greater than or equal to 0.001"),
        "memory_limit": ({"memory_limit": 2048}, "must be greater than or equal to 16384"),
        "max_processes_and_or_threads": ({"max_processes_and_or_threads": 1}, "must be greater than or equal to 16"),
        "enable_network": ({"enable_network": True}, "enabling network is not allowed"),
        "callback_url": ({"callback_url": "http://127.0.0.1:9/cb"}, "127.0.0.1 is a loopback address"),
        "compiler_options": ({"compiler_options": "-O3"}, "setting compiler options is not allowed"),
        "number_of_runs": ({"number_of_runs": 3}, "must be 1"),
        "enable_per_process_and_thread_time_limit": (
            {"enable_per_process_and_thread_time_limit": True}, "this option cannot be enabled"),
        "command_line_arguments": ({"command_line_arguments": "'unclosed"}, "cannot be split"),
    }  # fmt: skip
    for field, (extra, message) in cases.items():
        body = (
            dict(extra)
            if field in ("language_id", "source_code")
            else {"source_code": "print(1)", "language_id": PY, **extra}
        )
        r = submit(client, body)
        assert r.status_code == 422, (field, r.text)
        errors = r.json()
        assert list(errors) == [field] and message in errors[field][0], (field, errors)
    not_json = client.post("/judge0/submissions", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400


def test_limits_fields_are_applied(client: httpx.Client) -> None:
    body = {"source_code": "while True: pass", "language_id": PY, "cpu_time_limit": 0.5, "wall_time_limit": 5}
    out = submit(client, body, fields="status,time,cpu_time_limit").json()
    assert out["status"]["id"] == 5 and out["cpu_time_limit"] == 0.5
    assert 0.4 <= float(out["time"]) <= 2.0


def test_redirect_stderr_to_stdout_keeps_the_order_written(client: httpx.Client) -> None:
    code = "import sys\nfor i in range(3):\n    print(i, flush=True); print('e', i, file=sys.stderr, flush=True)"
    body = {"source_code": code, "language_id": PY}
    merged = submit(
        client, {**body, "redirect_stderr_to_stdout": True}, fields="stdout,stderr,redirect_stderr_to_stdout"
    )
    assert merged.json() == {"stdout": "0\ne 0\n1\ne 1\n2\ne 2\n", "stderr": None, "redirect_stderr_to_stdout": True}
    apart = submit(client, body, fields="stdout,stderr").json()
    assert apart == {"stdout": "0\n1\n2\n", "stderr": "e 0\ne 1\ne 2\n"}


def test_command_line_arguments_and_additional_files(client: httpx.Client) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data/words.txt", "from the zip\n")
    body = {"source_code": "import sys; print(sys.argv[1:]); print(open('data/words.txt').read(), end='')",
            "language_id": PY, "command_line_arguments": "one 'two three'",
            "additional_files": base64.b64encode(buf.getvalue()).decode()}  # fmt: skip
    r = submit(client, body)
    assert r.status_code == 201, r.text
    assert r.json()["stdout"] == "['one', 'two three']\nfrom the zip\n", r.text
    bad = submit(
        client, {"source_code": "x", "language_id": PY, "additional_files": base64.b64encode(b"nope").decode()}
    )
    assert bad.status_code == 422 and "additional_files" in bad.json()


def _zip(files: dict[str, str]) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return base64.b64encode(buf.getvalue()).decode()


def test_a_multi_file_program_is_built_by_its_compile_script_and_run_by_its_run_script(client: httpx.Client) -> None:
    program = {
        "main.c": '#include <stdio.h>\n#include "greet.h"\nint main(int c, char **v) { greet(v[1]); return 0; }\n',
        "greet.h": '#include <stdio.h>\nstatic void greet(const char *w) { printf("hello %s\\n", w); }\n',
        "compile": "gcc -O2 -o prog main.c\n",
        "run": './prog "$@"\ncat data.txt\n',
        "data.txt": "from the zip\n",
    }
    body = {"language_id": 89, "additional_files": _zip(program), "command_line_arguments": "zipped"}
    r = submit(client, body, fields="stdout,status_id,language_id")
    assert r.json() == {"stdout": "hello zipped\nfrom the zip\n", "status_id": 3, "language_id": 89}, r.text
    broken = submit(client, {**body, "additional_files": _zip({**program, "compile": "gcc -o prog missing.c"})})
    assert broken.json()["status"]["id"] == 6 and "missing.c" in broken.json()["compile_output"]
    only_sh = submit(client, {"language_id": 89, "additional_files": _zip({"run.sh": "echo sh\n"})})
    assert only_sh.json()["stdout"] == "sh\n"
    with_source = submit(client, {**body, "source_code": "x"})
    assert with_source.status_code == 422 and "source_code" in with_source.json()
    no_run = submit(client, {"language_id": 89, "additional_files": _zip({"main.c": "int main(void){}"})})
    assert no_run.status_code == 422 and "run" in no_run.json()["additional_files"][0]


def test_additional_files_refuse_links_and_escaping_names(client: httpx.Client) -> None:
    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("evil")
        info.external_attr = 0o120777 << 16  # a symlink entry
        zf.writestr(info, "/etc/passwd")
    r = submit(
        client, {"source_code": "x", "language_id": PY, "additional_files": base64.b64encode(link.getvalue()).decode()}
    )
    assert r.status_code == 422 and "regular file" in r.json()["additional_files"][0]
    up = io.BytesIO()
    with zipfile.ZipFile(up, "w") as zf:
        zf.writestr("../outside.txt", "x")
    r = submit(
        client, {"source_code": "x", "language_id": PY, "additional_files": base64.b64encode(up.getvalue()).decode()}
    )
    assert r.status_code == 422, r.text


# -- statuses from real programs ----------------------------------------------------------------------

KILL = "import os, signal; os.kill(os.getpid(), signal.{})"
PROGRAMS = [
    ("print(1)", {}, 3),
    ("print(2)", {"expected_output": "1"}, 4),
    ("print('x  ')\nprint()", {"expected_output": "x\n"}, 3),  # Judge0's rule: trailing whitespace is free
    ("while True: pass", {"cpu_time_limit": 0.3}, 5),
    (KILL.format("SIGSEGV"), {}, 7),
    ("import os, signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL); os.kill(os.getpid(), signal.SIGXFSZ)", {}, 8),
    (KILL.format("SIGFPE"), {}, 9),
    ("import os; os.abort()", {}, 10),
    ("raise SystemExit(3)", {}, 11),
    (KILL.format("SIGUSR1"), {}, 12),
    ("x = bytearray(200 * 1024 * 1024); print(len(x))", {"memory_limit": 65536}, 12),
]


@pytest.mark.parametrize(("code", "extra", "status"), PROGRAMS)
def test_status_of_a_real_program(client: httpx.Client, code: str, extra: dict[str, Any], status: int) -> None:
    out = submit(client, {"source_code": code, "language_id": PY, **extra}, fields="status,message,exit_code").json()
    assert out["status"] == {"id": status, "description": STATUSES[status]}, out
    if status == 11:
        assert out["exit_code"] == 3 and out["message"] == "Exited with error status 3"


def test_compilation_error(client: httpx.Client) -> None:
    out = submit(client, {"source_code": "int main(void) { return 0 }", "language_id": C}, fields="*").json()
    assert out["status"]["id"] == 6 and "error" in out["compile_output"]
    assert out["stdout"] is None and out["time"] is None and out["memory"] is None


# -- the informational endpoints ----------------------------------------------------------------------


def test_languages(client: httpx.Client) -> None:
    langs = client.get("/judge0/languages").json()
    ids = {x["id"] for x in langs}
    assert {PY, C, 54, 62, 63} <= ids and all(set(x) == {"id", "name"} for x in langs)
    one = client.get(f"/judge0/languages/{PY}").json()
    assert set(one) == {"id", "name", "is_archived", "source_file", "compile_cmd", "run_cmd"}
    assert one["is_archived"] is False and one["source_file"] == "main.py" and one["compile_cmd"] is None
    assert client.get("/judge0/languages/999").status_code == 404
    every = client.get("/judge0/languages/all").json()
    assert all(set(x) == {"id", "name", "is_archived"} for x in every) and len(every) >= len(langs)


def test_statuses_about_config_workers(client: httpx.Client) -> None:
    statuses = client.get("/judge0/statuses").json()
    assert [s["id"] for s in statuses] == list(range(1, 15)) and statuses[2]["description"] == "Accepted"
    assert client.get("/judge0/about").json()["version"] == "1.13.1"
    assert client.get("/judge0/version").text == "1.13.1"
    cfg = client.get("/judge0/config_info").json()
    assert (
        cfg["enable_wait_result"] is True and cfg["allow_enable_network"] is False and cfg["enable_callbacks"] is True
    )
    assert cfg["max_submission_batch_size"] == 20 and cfg["cpu_time_limit"] == 5.0
    workers = client.get("/judge0/workers").json()
    assert len(workers) == 1 and set(workers[0]) == {
        "queue",
        "size",
        "available",
        "idle",
        "working",
        "paused",
        "failed",
    }
    assert client.post("/judge0/authenticate").status_code == 200


# -- auth, tenants, quota --------------------------------------------------------------------------


def test_auth_token_header_is_our_api_key(keyed_server: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = keyed_server
    with httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/judge0/languages").status_code == 401
        assert c.get("/judge0/languages", headers={"X-Auth-Token": "wrong"}).status_code == 401
        assert c.post("/judge0/authenticate", headers={"X-Auth-Token": "wrong"}).status_code == 401
        assert c.get("/judge0/languages", headers={"X-Auth-Token": keys["acme"]}).status_code == 200
        assert c.get("/judge0/languages", headers={"Authorization": f"Bearer {keys['acme']}"}).status_code == 200
        r = c.post("/judge0/submissions", json={"source_code": "x", "language_id": PY}, params=WAIT)
        assert r.status_code == 401 and "error" in r.json()


def test_tenant_languages_and_quota_apply(keyed_server: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = keyed_server
    with httpx.Client(base_url=server.url, timeout=60) as c:
        only = {"X-Auth-Token": keys["python-only"]}
        r = c.post(
            "/judge0/submissions", json={"source_code": "int main(){}", "language_id": C}, params=WAIT, headers=only
        )
        assert r.status_code == 422 and "may not use" in r.json()["language_id"][0]
        once = {"X-Auth-Token": keys["one-a-day"]}
        first = c.post("/judge0/submissions", json={"source_code": "print(1)", "language_id": PY}, headers=once)
        assert first.status_code == 201
        second = c.post("/judge0/submissions", json={"source_code": "print(1)", "language_id": PY}, headers=once)
        assert second.status_code == 429 and "quota" in second.json()["error"] and "Retry-After" in second.headers


def test_compiler_options_are_allowed_by_the_language_or_refused(client: httpx.Client) -> None:
    program = '#include <stdio.h>\nint main(void) { printf("%d\\n", ANSWER); }\n'
    body = {"source_code": program, "language_id": C, "compiler_options": "-DANSWER=42 -O0 -Wall"}
    out = submit(client, body, fields="status,stdout,compiler_options").json()
    assert out["status"]["id"] == 3 and out["stdout"] == "42\n" and out["compiler_options"] == body["compiler_options"]
    refused = submit(client, {**body, "compiler_options": "-O2 -fplugin=/tmp/evil.so"})
    assert refused.status_code == 422
    assert refused.json() == {"compiler_options": ["'-fplugin=/tmp/evil.so' is not among the allowed compiler options"]}
    cfg = client.get("/judge0/config_info").json()
    assert cfg["enable_compiler_options"] is True and "C (GCC)" in cfg["allowed_languages_for_compile_options"]


def test_listing_pages_through_the_tenants_own_submissions(keyed_server: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = keyed_server
    with Store(server.data_dir / "stockade.db") as st:
        st.create_tenant("lister", "lister", rate_per_minute=1000)
        mine = {"X-Auth-Token": st.create_key("lister", "test")[1]}
    with httpx.Client(base_url=server.url, timeout=60, headers=mine) as c:
        assert c.get("/judge0/submissions").json() == {
            "submissions": [],
            "meta": {"current_page": 1, "next_page": None, "prev_page": None, "total_pages": 0, "total_count": 0},
        }
        tokens = [submit(c, {"source_code": f"print({i})", "language_id": PY}).json()["token"] for i in range(3)]
        first = c.get("/judge0/submissions", params={"per_page": "2", "fields": "token,stdout"}).json()
        second = c.get("/judge0/submissions", params={"per_page": "2", "page": "2", "fields": "token,stdout"}).json()
        assert [s["token"] for s in first["submissions"] + second["submissions"]] == tokens[::-1]  # newest first
        assert first["meta"] == {
            "current_page": 1,
            "next_page": 2,
            "prev_page": None,
            "total_pages": 2,
            "total_count": 3,
        }
        assert second["meta"]["prev_page"] == 1 and second["submissions"][0]["stdout"] == "0\n"
        assert c.get("/judge0/submissions", params={"per_page": "101"}).status_code == 400
        assert c.get("/judge0/submissions", params={"page": "x"}).status_code == 400
    # Another tenant sees none of them.
    with httpx.Client(base_url=server.url, timeout=60, headers={"X-Auth-Token": keys["acme"]}) as other:
        listed = other.get("/judge0/submissions", params={"per_page": "100", "fields": "token"}).json()["submissions"]
        assert not {s["token"] for s in listed} & set(tokens)
