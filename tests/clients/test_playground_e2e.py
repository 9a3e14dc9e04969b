"""The playground end to end: Debian's headless Chromium, driven by Playwright, against a live server's `/`.

Never downloads a browser: Playwright launches /usr/bin/chromium (installed by the Makefile's apt list).
Screenshots go to each test's tmp_path; the latest one is also copied to test-output/playground.png.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.service.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LATEST_SCREENSHOT = Path(__file__).resolve().parents[2] / "test-output" / "playground.png"
RUN_TIMEOUT_MS = 90_000  # a run on a busy host, compile included


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: the Makefile's apt list installs chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, open_server: LiveServer) -> Iterator[Page]:
    """A fresh context (no remembered language or key) with the playground loaded and ready to run."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(open_server.url + "/")
    expect(page.locator("#language")).to_be_enabled(timeout=60_000)  # the runtimes list has loaded
    expect(page.locator("#run")).to_be_enabled()
    expect(page.locator("#verdict")).to_have_attribute("data-status", "idle")
    yield page
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def snap(page: Page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    LATEST_SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, LATEST_SCREENSHOT)
    return shot


def set_program(page: Page, language: str, code: str) -> None:
    page.select_option("#language", language)
    page.evaluate("code => window.stockadeEditor.setValue(code)", code)


def wait_verdict(page: Page, status: str) -> None:
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-status", status, timeout=RUN_TIMEOUT_MS)
    expect(verdict).to_have_text(status)


def test_python_run(page: Page, tmp_path: Path) -> None:
    set_program(page, "python", "print(21*2)")
    page.click("#run")
    wait_verdict(page, "ok")
    expect(page.locator("#stdout")).to_have_text("42\n")
    expect(page.locator("#stderr")).to_have_text("")
    expect(page.locator("#exit-code")).to_have_text("0")
    expect(page.locator("#time")).to_contain_text("ms")
    expect(page.locator("#memory")).to_contain_text("iB")
    expect(page.locator("#error")).to_be_hidden()
    assert snap(page, tmp_path, "python-ok").stat().st_size > 0


def test_limit_fields_show_the_servers_run_limits(page: Page, open_server: LiveServer) -> None:
    run = httpx.get(open_server.url + "/v1/runtimes", timeout=30).json()["limits"]["run"]
    for key, field in (("cpu_ms", "#limit-cpu-ms"), ("wall_ms", "#limit-wall-ms"), ("memory_mb", "#limit-memory-mb")):
        default, maximum = run["default"][key], run["maximum"][key]
        expect(page.locator(field)).to_have_attribute("placeholder", str(default))
        expect(page.locator(field)).to_have_attribute("max", str(maximum))
        expect(page.locator(field)).to_have_attribute("title", f"Default {default}, at most {maximum}")


def test_cpu_limit_timeout(page: Page, tmp_path: Path) -> None:
    set_program(page, "python", "while True: pass")
    page.fill("#limit-cpu-ms", "300")
    page.click("#run")
    wait_verdict(page, "timeout")
    expect(page.locator("#verdict-detail")).to_have_text("CPU time limit exceeded")
    snap(page, tmp_path, "python-timeout")


def test_c_compile_error(page: Page, tmp_path: Path) -> None:
    set_program(page, "c", '#include <stdio.h>\nint main(void) {\n    printf("hi")\n    return 0;\n}\n')
    page.click("#run")
    wait_verdict(page, "compile_error")
    expect(page.locator("#compile-section")).to_be_visible()
    output = page.locator("#compile-output")
    expect(output).to_contain_text("error")
    expect(output).to_contain_text("main.c")
    expect(page.locator("#stdout")).to_have_text("")
    snap(page, tmp_path, "c-compile-error")


def test_ctrl_enter_runs(page: Page, tmp_path: Path) -> None:
    set_program(page, "python", "print('from the keyboard')")
    page.click("#editor")
    page.keyboard.press("Control+Enter")
    wait_verdict(page, "ok")
    expect(page.locator("#stdout")).to_have_text("from the keyboard\n")
    # The shortcut ran the program without typing a newline into it.
    assert page.evaluate("window.stockadeEditor.getValue()") == "print('from the keyboard')"
    snap(page, tmp_path, "ctrl-enter")


def test_output_shows_live_and_input_goes_to_the_running_program(page: Page, tmp_path: Path) -> None:
    # The program cannot end before "End input" is clicked: what the page shows until then came live.
    echo = "import sys\nprint('ready', flush=True)\n"
    echo += "for line in sys.stdin:\n    print('echo:', line, end='', flush=True)"
    set_program(page, "python", echo)
    page.check("#interactive")
    page.click("#run")
    expect(page.locator("#stdout")).to_have_text("ready\n", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#verdict")).to_have_attribute("data-status", "running")
    expect(page.locator("#live-input-row")).to_be_visible()
    page.fill("#live-input", "hello <b>there</b>")
    page.press("#live-input", "Enter")
    expect(page.locator("#stdout")).to_have_text("ready\necho: hello <b>there</b>\n")
    snap(page, tmp_path, "interactive")
    page.click("#end-input")
    wait_verdict(page, "ok")
    expect(page.locator("#stdout")).to_have_text("ready\necho: hello <b>there</b>\n")
    expect(page.locator("#live-input-row")).to_be_hidden()


def test_api_docs_render_with_no_other_origin(browser: Browser, open_server: LiveServer, tmp_path: Path) -> None:
    """Swagger UI at /docs renders with every request to another origin refused, as on a host without
    internet."""
    context = browser.new_context()
    elsewhere: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(open_server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.goto(open_server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Stockade", timeout=60_000)
    expect(page.locator(".opblock-summary-path[data-path='/v1/execute']").first).to_be_visible()
    snap(page, tmp_path, "api-docs")
    context.close()
    assert elsewhere == []
