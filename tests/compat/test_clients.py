"""The real client packages (pinned in pyproject's dev extra) against a real server: the `judge0`
Python SDK's documented uses, and `pistonpy`."""

from __future__ import annotations

from collections.abc import Iterator

import judge0
import pistonpy
import pistonpy.pistonapp
import pytest
from judge0.retry import MaxRetries

from tests.service.live import LiveServer


@pytest.fixture(scope="module")
def sdk(open_server: LiveServer) -> Iterator[judge0.Client]:
    client = judge0.Client(f"{open_server.url}/judge0", retry_strategy=MaxRetries(600))  # 0.1 s apart: 60 s
    yield client


def test_sdk_single_run_waits_for_the_result(sdk: judge0.Client) -> None:
    result = judge0.run(client=sdk, source_code="print(f'hello {input()}')", language=judge0.PYTHON, stdin="sdk")
    assert result.stdout == "hello sdk\n"
    assert result.status == judge0.Status.ACCEPTED
    assert result.time is not None and result.memory is not None and result.token is not None


def test_sdk_async_execute_then_wait(sdk: judge0.Client) -> None:
    submission = judge0.async_execute(client=sdk, source_code="print(7 * 6)", language=judge0.PYTHON)
    assert submission.token is not None and not submission.is_done()
    done = judge0.wait(client=sdk, submissions=submission)
    assert done.stdout == "42\n" and done.status == judge0.Status.ACCEPTED


def test_sdk_batch_with_test_cases_and_expected_output(sdk: judge0.Client) -> None:
    results = judge0.run(
        client=sdk,
        source_code="a, b = map(int, input().split()); print(a + b)",
        language=judge0.PYTHON,
        test_cases=[("1 2", "3"), ("2 2", "4"), ("2 2", "5")],
    )
    assert [r.status for r in results] == [judge0.Status.ACCEPTED, judge0.Status.ACCEPTED, judge0.Status.WRONG_ANSWER]
    assert [r.stdout for r in results] == ["3\n", "4\n", "4\n"]


def test_sdk_compile_error_and_timeout(sdk: judge0.Client) -> None:
    broken = judge0.run(client=sdk, source_code="int main(void) { return 0 }", language=judge0.C)
    assert broken.status == judge0.Status.COMPILATION_ERROR and "error" in (broken.compile_output or "")
    loop = judge0.run(client=sdk, source_code="while True: pass", language=judge0.PYTHON, cpu_time_limit=0.5)
    assert loop.status == judge0.Status.TIME_LIMIT_EXCEEDED


def test_sdk_base64_bytes_round_trip(sdk: judge0.Client) -> None:
    # The SDK always sends and asks for base64: a non-ASCII program and output survive it.
    result = judge0.run(client=sdk, source_code="print('ünïcødé ✓')", language=judge0.PYTHON)
    assert result.stdout == "ünïcødé ✓\n"


def test_sdk_reads_languages_statuses_and_config(sdk: judge0.Client) -> None:
    assert sdk.is_language_supported(judge0.PYTHON) and sdk.is_language_supported(judge0.CPP)
    assert sdk.get_language(71).source_file == "main.py"
    assert len(sdk.get_statuses()) == 14
    assert sdk.config.max_submission_batch_size == 20 and sdk.config.allow_enable_network is False
    assert sdk.version == "1.13.1"


@pytest.fixture
def piston(open_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> pistonpy.PistonApp:
    """pistonpy with its endpoint (the public host, built in) pointed at this server."""
    endpoint = f"{open_server.url}/api/v2/piston"

    class Here(pistonpy.pistonapp.GetOutput):  # type: ignore[misc]
        def __init__(self, payload: dict[str, object]) -> None:
            super().__init__(payload)
            self._endpoint = f"{endpoint}/execute"

    monkeypatch.setattr(pistonpy.pistonapp, "GetOutput", Here)
    app = pistonpy.PistonApp()
    app._endpoint = endpoint
    return app


def test_pistonpy_runs_code_and_lists_runtimes(piston: pistonpy.PistonApp) -> None:
    out = piston.run(language="python", version="3", code="import sys; print(input(), sys.argv[1:])",
                     input="in", args=["a", "b"])  # fmt: skip
    assert out["language"] == "python" and out["run"]["stdout"] == "in ['a', 'b']\n" and out["run"]["code"] == 0
    assert "python" in piston.languages and "py" in piston.aliases["python"]


def test_pistonpy_reports_piston_errors(piston: pistonpy.PistonApp) -> None:
    with pytest.raises(pistonpy.exceptions.PistonError, match="runtime is unknown"):
        piston.run(language="python", version="2.7", code="print 1")
