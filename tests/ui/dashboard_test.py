#!/usr/bin/env python3
"""The dashboard (/ui) in a real headless Chromium, driven over WebDriver.

Signs in with IM credentials, sees the server's error for a bad RADL in place,
creates an infrastructure (Dummy cloud, with contextualization), waits for it to
reach `configured`, moves the history slider back and sees an earlier state, then
destroys it after the confirmation. A screenshot of each step is written to the
directory printed at the start (UI_SCREENSHOTS, default target/ui-screenshots).

    UI_BASE_URL=http://127.0.0.1:PORT python3 tests/ui/dashboard_test.py
"""

import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ.get("UI_BASE_URL", "http://127.0.0.1:8800").rstrip("/")
SHOTS = os.path.abspath(os.environ.get("UI_SCREENSHOTS", "target/ui-screenshots"))
CREDENTIALS = "id = im; type = InfrastructureManager; username = ui-tester; password = secret\nid = dummy; type = Dummy"
RADL = """network net (outbound = 'yes')
system node (
cpu.count >= 1 and
memory.size >= 512m and
net_interface.0.connection = 'net' and
disk.0.os.name = 'linux'
)
configure node (
@begin
- tasks: []
@end
)
deploy node 2
contextualize (system node configure node)
"""


def api(path):
    """The API's JSON answer, with the test's credentials (to check what the page says)."""
    request = urllib.request.Request(
        BASE + path,
        headers={"AUTHORIZATION": CREDENTIALS.replace("\n", "\\n"), "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


class Dashboard:
    def __init__(self):
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1440,1200", "--force-device-scale-factor=1"):
            options.add_argument(argument)
        service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.step = 0

    def shot(self, name):
        self.step += 1
        path = os.path.join(SHOTS, f"{self.step:02d}-{name}.png")
        self.driver.save_screenshot(path)
        print(f"  screenshot {path}", flush=True)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait(self, what, condition, timeout=20):
        try:
            # The page re-renders as it polls: an element read while it is replaced
            # is read again at the next poll, not a failure.
            return WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=0.2,
                ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
            ).until(lambda _: condition())
        except TimeoutException:
            self.shot("FAILED-" + what.replace(" ", "-"))
            raise AssertionError(f"timed out waiting for: {what}")

    def visible(self, css):
        elements = self.driver.find_elements(By.CSS_SELECTOR, css)
        return bool(elements) and elements[0].is_displayed()

    def text(self, css):
        # An element the page replaced between finding and reading is found again.
        for _ in range(20):
            try:
                return self.find(css).text.strip()
            except StaleElementReferenceException:
                time.sleep(0.05)
        return self.find(css).text.strip()

    def type_into(self, css, text):
        box = self.find(css)
        box.clear()
        box.send_keys(text)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    for old in os.listdir(SHOTS):
        if old.endswith(".png"):
            os.remove(os.path.join(SHOTS, old))
    print(f"screenshots in {SHOTS}", flush=True)
    ui = Dashboard()
    try:
        scenario(ui)
    finally:
        ui.driver.quit()
    print("dashboard test: all steps passed")


def scenario(ui):
    d = ui.driver
    print("sign in")
    d.get(BASE + "/ui")
    ui.wait("the sign-in form", lambda: ui.visible("#signin-view"))
    ui.type_into("#auth-lines", CREDENTIALS)
    ui.shot("sign-in")
    ui.find("#signin-btn").click()
    ui.wait("the signed-in view", lambda: ui.visible("#app-view"))
    assert ui.text("#user-name") == "ui-tester", ui.text("#user-name")
    ui.wait("the empty list", lambda: ui.visible("#infra-empty"))
    stored = d.execute_script("return sessionStorage.getItem('infralog.credentials')")
    assert stored == CREDENTIALS, "the credentials are kept in sessionStorage"
    assert d.execute_script("return localStorage.length") == 0, "nothing in localStorage"
    ui.shot("signed-in")

    print("create: a bad RADL shows the server's error in place")
    ui.find("#new-btn").click()
    ui.wait("the create form", lambda: ui.visible("#create-view"))
    ui.type_into("#create-text", "system broken (")
    ui.find("#create-btn").click()
    ui.wait("the server's error", lambda: ui.visible("#create-error"))
    error = ui.text("#create-error")
    assert error.startswith("400 ") and "pars" in error.lower(), error
    ui.shot("create-error")

    print("create from a RADL with contextualization")
    ui.type_into("#create-text", RADL)
    ui.find("#create-btn").click()
    ui.wait("the new infrastructure's page", lambda: ui.visible("#detail-view") and ui.text("#detail-id"))
    infid = ui.text("#detail-id")
    assert infid in [u["uri"].split("/")[-1] for u in api("/infrastructures")["uri-list"]], infid
    ui.wait("the infrastructure in the list", lambda: d.find_elements(By.CSS_SELECTOR, f'.infra-item[data-id="{infid}"]'))
    ui.wait("its two VMs", lambda: len(d.find_elements(By.CSS_SELECTOR, "#vm-rows tr")) == 2)
    early = ui.text("#detail-state")
    print(f"  first state seen: {early}")
    ui.shot("created")

    print("see it reach configured (contmsg live meanwhile)")
    ui.wait("state configured", lambda: ui.text("#detail-state") == "configured", timeout=40)
    ui.wait("the list says configured", lambda: ui.text(f'.infra-item[data-id="{infid}"] .badge') == "configured")
    ui.wait("the contextualization log", lambda: "Select master VM" in ui.text("#contmsg"))
    ips = [cell.text for cell in d.find_elements(By.CSS_SELECTOR, "#vm-rows tr td:nth-child(4)")]
    assert all(ip.startswith("10.") for ip in ips), ips
    assert "deploy node 2" in ui.text("#radl"), "the RADL is shown"
    assert ui.text(f'.infra-item[data-id="{infid}"] .sub') == "2 VMs"
    ui.shot("configured")

    print("timeline: move the slider back")
    events = api(f"/infrastructures/{infid}/events")["events"]
    ui.wait("every event in the timeline", lambda: len(d.find_elements(By.CSS_SELECTOR, "#timeline li")) == len(events))
    slider = ui.find("#timeline-slider")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", ui.find(".timeline-card"))
    assert slider.get_attribute("value") == str(events[-1]["version"]), "live: the slider is at the newest event"
    # Focus without clicking: a click would move the thumb to where it lands.
    d.execute_script("arguments[0].focus()", slider)
    slider.send_keys(Keys.HOME)
    # Version 2 (resources requested): the VMs exist but none has booted.
    slider.send_keys(Keys.ARROW_RIGHT)
    ui.wait("the history banner at version 2", lambda: ui.visible("#history-banner") and "version 2 " in ui.text("#history-text"))
    expected = api(f"/infrastructures/{infid}/state?at=2")["state"]["state"]
    assert expected == "pending", expected
    # Version 1 has no VMs and version 3 has one running: two pending VMs are version 2's.
    ui.wait("the VMs as they were", lambda: [cell.text for cell in d.find_elements(By.CSS_SELECTOR, "#vm-rows .badge")] == ["pending", "pending"])
    ui.wait("the earlier state", lambda: ui.text("#detail-state") == "pending")
    assert ui.find("#timeline li.current").get_attribute("data-version") == "2"
    assert ui.find("#destroy-btn").get_attribute("disabled") is not None, "no actions in the past"
    assert ui.text("#contmsg") == "(empty)", ui.text("#contmsg")
    d.execute_script("window.scrollTo(0, 0)")
    ui.shot("history-version-2")
    ui.find("#live-btn").click()
    ui.wait("back to the present", lambda: ui.text("#detail-state") == "configured" and not ui.visible("#history-banner"))

    print("destroy, with confirmation")
    ui.find("#destroy-btn").click()
    ui.wait("the confirmation", lambda: ui.visible("#confirm-modal"))
    assert infid in ui.text("#confirm-id")
    ui.shot("confirm-destroy")
    ui.find("#confirm-destroy").click()
    ui.wait("the empty list", lambda: ui.visible("#infra-empty") and ui.visible("#welcome"))
    assert api("/infrastructures")["uri-list"] == [], "the server destroyed it"
    ui.shot("destroyed")

    print("sign out forgets the credentials")
    ui.find("#signout-btn").click()
    ui.wait("the sign-in form", lambda: ui.visible("#signin-view"))
    assert d.execute_script("return sessionStorage.getItem('infralog.credentials')") is None


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"dashboard test FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
