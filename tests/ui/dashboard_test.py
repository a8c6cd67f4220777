#!/usr/bin/env python3
"""The dashboard (/ui) in a real headless Chromium, driven over WebDriver.

Signs in with IM credentials, sees the server's error for a bad RADL in place,
creates an infrastructure (Dummy cloud, with contextualization), waits for it to
reach `configured`, moves the history slider back and sees an earlier state,
checks that polling reads only new events and nothing while the tab is hidden,
stops, starts and reconfigures it (the VMs' states and the history follow), and
destroys it after the confirmation; then sees a bad TOSCA template's error in
place and creates one from TOSCA that reaches `configured`. A screenshot of each
step is written to the directory printed at the start (UI_SCREENSHOTS, default
target/ui-screenshots).

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


TOSCA = """tosca_definitions_version: tosca_simple_yaml_1_0
description: one small server, from the dashboard test
topology_template:
  inputs:
    cpus:
      type: integer
      default: 1
  node_templates:
    server:
      type: tosca.nodes.Compute
      capabilities:
        host:
          properties:
            num_cpus: { get_input: cpus }
            mem_size: 1 GB
        os:
          properties:
            type: linux
"""
# The same with an input that does not exist: the server refuses it (400).
BAD_TOSCA = TOSCA.replace("get_input: cpus", "get_input: missing")


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

    def badges(self, css):
        """The texts of the state badges under `css`, read again if the page replaced them."""
        for _ in range(20):
            try:
                return [cell.text for cell in self.driver.find_elements(By.CSS_SELECTOR, css + " .badge")]
            except StaleElementReferenceException:
                time.sleep(0.05)
        return []

    def api_requests(self):
        """The paths (with query) of the API requests the page made since the last
        `forget_requests`, in order (the browser's resource timing)."""
        names = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        return [name[len(BASE):] for name in names if name.startswith(BASE + "/infrastructures")]

    def forget_requests(self):
        self.driver.execute_script(
            "performance.setResourceTimingBufferSize(100000); performance.clearResourceTimings()"
        )

    def timeline(self):
        """(version, event title) of each event the page's history shows."""
        for _ in range(20):
            try:
                return [
                    (int(item.get_attribute("data-version")), item.find_element(By.CSS_SELECTOR, ".what b").text)
                    for item in self.driver.find_elements(By.CSS_SELECTOR, "#timeline li")
                ]
            except StaleElementReferenceException:
                time.sleep(0.05)
        raise AssertionError("the timeline kept changing")


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

    polling(ui, infid)
    operations(ui, infid)

    print("destroy, with confirmation")
    ui.find("#destroy-btn").click()
    ui.wait("the confirmation", lambda: ui.visible("#confirm-modal"))
    assert infid in ui.text("#confirm-id")
    ui.shot("confirm-destroy")
    ui.find("#confirm-destroy").click()
    ui.wait("the empty list", lambda: ui.visible("#infra-empty") and ui.visible("#welcome"))
    assert api("/infrastructures")["uri-list"] == [], "the server destroyed it"
    ui.shot("destroyed")

    tosca(ui)

    print("sign out forgets the credentials")
    ui.find("#signout-btn").click()
    ui.wait("the sign-in form", lambda: ui.visible("#signin-view"))
    assert d.execute_script("return sessionStorage.getItem('infralog.credentials')") is None


def human(event_type):
    """The title the page gives an event type (as dashboard.js's humanType)."""
    words = []
    for char in event_type:
        if char.isupper() and words:
            words.append(" ")
        words.append(char)
    parts = "".join(words).split(" ")
    return " ".join("VM" if w == "Vm" else (w if i == 0 else w.lower()) for i, w in enumerate(parts))


def same_history(ui, infid):
    """Whether the page's history is the server's, event for event."""
    events = api(f"/infrastructures/{infid}/events")["events"]
    return ui.timeline() == [(e["version"], human(e["type"])) for e in events]


def polling(ui, infid):
    print("polling: only new events are read, and nothing while the tab is hidden")
    d = ui.driver
    last = api(f"/infrastructures/{infid}/events")["events"][-1]["version"]
    ui.forget_requests()
    # Three polls of a settled infrastructure.
    time.sleep(6.5)
    requests = ui.api_requests()
    event_reads = [r for r in requests if "/events" in r]
    assert len(event_reads) >= 2, requests
    assert all(r.endswith(f"/events?from={last + 1}") for r in event_reads), event_reads
    # Nothing changed, so nothing else of the infrastructure was read again.
    for unchanged in ("/radl", "/contmsg", "/vms/"):
        assert not [r for r in requests if unchanged in r], (unchanged, requests)
    assert same_history(ui, infid), ui.timeline()
    # A hidden tab asks nothing...
    d.execute_script(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    ui.forget_requests()
    time.sleep(4.5)
    assert ui.api_requests() == [], ui.api_requests()
    # ...and catches up as soon as it is shown again.
    d.execute_script(
        "delete document.visibilityState; document.dispatchEvent(new Event('visibilitychange'));"
    )
    assert d.execute_script("return document.visibilityState") == "visible"
    ui.wait("a read when shown again", lambda: [r for r in ui.api_requests() if "/events?from=" in r], timeout=1.5)


def operations(ui, infid):
    d = ui.driver
    vm_badges = "#vm-rows"

    print("stop: the VMs are stopped")
    ui.forget_requests()
    ui.find("#stop-btn").click()
    ui.wait("the infrastructure stopped", lambda: ui.text("#detail-state") == "stopped")
    ui.wait("both VMs stopped", lambda: ui.badges(vm_badges) == ["stopped", "stopped"])
    ui.wait("the stops in the history", lambda: [t for _, t in ui.timeline()].count("VM stopped") == 2)
    ui.wait("the page's history is the server's", lambda: same_history(ui, infid))
    assert api(f"/infrastructures/{infid}/state")["state"]["state"] == "stopped"
    ui.wait("Stop off and Start on", lambda: ui.find("#stop-btn").get_attribute("disabled") is not None
            and ui.find("#start-btn").get_attribute("disabled") is None)
    ui.shot("stopped")

    print("start: the VMs are back")
    ui.find("#start-btn").click()
    ui.wait("the infrastructure configured again", lambda: ui.text("#detail-state") == "configured")
    ui.wait("both VMs configured", lambda: ui.badges(vm_badges) == ["configured", "configured"])
    ui.wait("the starts in the history", lambda: [t for _, t in ui.timeline()].count("VM started") == 2)
    ui.wait("the page's history is the server's", lambda: same_history(ui, infid))
    ui.wait("Start off and Stop on", lambda: ui.find("#start-btn").get_attribute("disabled") is not None
            and ui.find("#stop-btn").get_attribute("disabled") is None)
    ui.shot("started")

    print("reconfigure: contextualization runs again, back to configured")
    runs_before = [t for _, t in ui.timeline()].count("Contextualization started")
    ui.find("#reconfigure-btn").click()
    ui.wait("the reconfiguration under way", lambda: ui.text("#detail-state") == "running")
    ui.wait("the contextualization log live", lambda: ui.visible("#contmsg-live"))
    ui.shot("reconfiguring")
    ui.wait("configured again", lambda: ui.text("#detail-state") == "configured", timeout=30)
    ui.wait("the new run in the history", lambda: [t for _, t in ui.timeline()].count("Contextualization started") == runs_before + 1)
    ui.wait("the page's history is the server's", lambda: same_history(ui, infid))
    ui.wait("the run's end in the history", lambda: ui.timeline()[-1][1] == "Contextualization finished")
    assert not ui.visible("#contmsg-live")
    # New events arrived all along: each was read once, never the whole history again.
    event_reads = [r for r in ui.api_requests() if "/events" in r]
    starts = [int(r.rsplit("from=", 1)[1]) for r in event_reads]
    assert starts == sorted(starts) and starts[0] > 1, event_reads
    d.execute_script("arguments[0].scrollIntoView({block: 'start'})", ui.find(".timeline-card"))
    ui.shot("reconfigured")
    d.execute_script("window.scrollTo(0, 0)")


def tosca(ui):
    d = ui.driver
    print("create from TOSCA: a bad template shows the server's error in place")
    ui.find("#new-btn").click()
    ui.wait("the create form", lambda: ui.visible("#create-view"))
    ui.type_into("#create-text", BAD_TOSCA)
    assert "TOSCA" in ui.text("#create-kind"), ui.text("#create-kind")
    ui.find("#create-btn").click()
    ui.wait("the server's error", lambda: ui.visible("#create-error"))
    error = ui.text("#create-error")
    assert error.startswith("400 ") and 'Unknown input "missing"' in error, error
    assert api("/infrastructures")["uri-list"] == [], "nothing was created"
    ui.shot("tosca-error")

    print("create from TOSCA and see it reach configured")
    ui.type_into("#create-text", TOSCA)
    ui.find("#create-btn").click()
    ui.wait("the new infrastructure's page", lambda: ui.visible("#detail-view") and ui.text("#detail-id"))
    infid = ui.text("#detail-id")
    ui.wait("state configured", lambda: ui.text("#detail-state") == "configured", timeout=40)
    ui.wait("its VM", lambda: ui.badges("#vm-rows") == ["configured"])
    ui.wait("the RADL translated from TOSCA", lambda: "system server" in ui.text("#radl"))
    assert ui.text(f'.infra-item[data-id="{infid}"] .sub') == "1 VM"
    ui.shot("tosca-configured")

    ui.find("#destroy-btn").click()
    ui.wait("the confirmation", lambda: ui.visible("#confirm-modal"))
    ui.find("#confirm-destroy").click()
    ui.wait("the empty list", lambda: ui.visible("#infra-empty"))
    assert api("/infrastructures")["uri-list"] == []


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"dashboard test FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
