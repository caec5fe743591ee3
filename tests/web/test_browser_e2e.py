"""End to end in a real browser: `killa login` in a terminal, approval in headless Chromium.

Everything is a real process on loopback: `killa serve` (mailing through a local SMTP server),
`killa login`, Debian's chromium driven by chromedriver through Selenium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.auth.fakes import Inbox, free_port

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
KILLA = Path(sys.executable).with_name("killa")
DIRECT_LINK = re.compile(r"(http://\S+/device\?code=[A-Z]{4}-[A-Z]{4})")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver (apt-get install them)",
    ),
]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILLA_")}
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    return {**env, **extra}


def start_gateway(tmp_path: Path, **settings: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = clean_env(KILLA_DATA_DIR=str(tmp_path / "data"), **settings)
    process = subprocess.Popen(
        [str(KILLA), "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/api/v1/health", timeout=1)
            return process, url
        except httpx.TransportError:
            assert process.poll() is None, "killa serve exited"
            assert time.monotonic() < deadline, "killa serve did not start"
            time.sleep(0.2)


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.terminate()
    _, stderr = process.communicate(timeout=15)
    return stderr or ""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1000,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def test_a_new_user_links_the_cli_by_approving_in_a_browser(
    tmp_path: Path, inbox: Inbox, browser: WebDriver, artifacts_dir: Path
) -> None:
    server, url = start_gateway(
        tmp_path,
        KILLA_SMTP_HOST="127.0.0.1",
        KILLA_SMTP_PORT=str(inbox.port),
        KILLA_SMTP_SECURITY="none",
        KILLA_DEVICE_LINK_INTERVAL_SECONDS="1",
    )
    config_home = tmp_path / "config"
    login = subprocess.Popen(
        [str(KILLA), "login", "--api-url", url, "--no-browser"],
        env=clean_env(XDG_CONFIG_HOME=str(config_home)),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert login.stderr is not None
        printed = []
        for line in login.stderr:
            printed.append(line)
            if match := DIRECT_LINK.search(line):
                direct_link = match.group(1)
                break
        else:
            raise AssertionError("killa login printed no link:\n" + "".join(printed))
        user_code = direct_link.rsplit("=", 1)[1]
        assert user_code in "".join(printed)

        wait = WebDriverWait(browser, 15)
        browser.get(direct_link)
        email = wait.until(expected_conditions.element_to_be_clickable((By.ID, "email")))
        assert "Sign in to approve the device" in browser.page_source
        email.send_keys("new.user@example.com")
        browser.find_element(By.CSS_SELECTOR, "form[action='/login/email'] button").click()

        code_input = wait.until(expected_conditions.element_to_be_clickable((By.ID, "code")))
        code_input.send_keys(inbox.code_for("new.user@example.com"))
        browser.find_element(By.CSS_SELECTOR, "form[action='/login/verify'] button").click()

        wait.until(expected_conditions.title_contains("Link a device"))
        page = browser.page_source
        assert "Approve this device?" in page
        assert user_code in page
        assert "killa-cli/" in page  # the requesting client, by its User-Agent
        assert "127.0.0.1" in page
        browser.save_screenshot(str(artifacts_dir / "device-link-approval.png"))

        browser.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
        wait.until(expected_conditions.title_contains("Device linked"))
        assert "Return to your terminal" in browser.page_source
        browser.save_screenshot(str(artifacts_dir / "device-link-approved.png"))

        _, rest = login.communicate(timeout=30)
        assert login.returncode == 0, "".join(printed) + rest
        assert "Linked as new.user@example.com" in rest

        stored = json.loads((config_home / "killa" / "credentials.json").read_text())
        balance = httpx.get(
            f"{url}/api/v1/balance", headers={"Authorization": f"Bearer {stored['apiKey']}"}
        )
        assert balance.status_code == 200
        assert balance.json()["usdAvailableMicros"] == 0
    finally:
        if login.poll() is None:
            login.kill()
            login.communicate()
        server_log = stop(server)
    assert "no SMTP configured" not in server_log


def test_without_smtp_serve_says_so_and_logs_the_code(tmp_path: Path) -> None:
    server, url = start_gateway(tmp_path)
    try:
        started = httpx.post(f"{url}/api/v1/auth/email/start", json={"email": "dev@example.com"})
        assert started.status_code == 200
    finally:
        log = stop(server)
    assert "no SMTP configured: sign-in codes are written to this log" in log
    assert re.search(r"sign-in code for dev@example.com is \d{6}", log)
