#!/usr/bin/env python3
"""IM interoperability: an infrastructure moves from IM 2.0.0 to infralog and from
infralog to IM 2.0.0, and then answers `state`, its VM list and VM info the same;
the same document, imported back into the source too, exports the same from both
(every key, in IM's order, `cloud_connector` included; not the owners' passwords).

Starts both servers on free loopback ports over temporary data, moves one
infrastructure each way with GET …/data and PUT /infrastructures, compares, and
stops every server it started. Exit status: 0 when everything matches, 1 on a
mismatch, 2 when a server cannot be started. Standard library only.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
RADL_FILE = os.path.join(HERE, "infrastructure.radl")
AUTH = ("id = im; type = InfrastructureManager; username = interop; password = interop-pass"
        "\\nid = dummy; type = Dummy")
REQUEST_TIMEOUT = 30


class Mismatch(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(base, method, path, body=None, headers=None):
    """(status, body text) of one request; HTTP errors are answers, not exceptions."""
    all_headers = {"AUTHORIZATION": AUTH}
    all_headers.update(headers or {})
    data = body.encode("utf-8") if isinstance(body, str) else body
    req = urllib.request.Request(base + path, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


class Server:
    """A child process serving HTTP, stopped on exit whatever happens."""

    def __init__(self, name, argv, base, log_path, env=None):
        self.name, self.base, self.log_path = name, base, log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.base + "/version", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.3)
        self.stop()
        with open(self.log_path, "rb") as log:
            tail = log.read()[-3000:].decode("utf-8", "replace")
        raise RuntimeError(f"{self.name} did not start at {self.base}:\n{tail}")

    def stop(self):
        if self.process.poll() is None:
            # Only this child's own process group: start_new_session made it its leader.
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self.log.close()


def start_with_retries(make, attempts=3, timeout=60):
    """Starts a server on a fresh port, trying again if the port was taken meanwhile."""
    last = None
    for _ in range(attempts):
        server = make(free_port())
        try:
            server.wait_ready(timeout)
            return server
        except RuntimeError as error:
            last = error
    raise last


def create(base):
    with open(RADL_FILE, encoding="utf-8") as radl:
        status, body = request(base, "POST", "/infrastructures", radl.read(),
                               {"Content-Type": "text/plain"})
    if status != 200:
        raise Mismatch(f"create at {base} answered {status}: {body}")
    return body.strip().rsplit("/", 1)[-1]


def wait_configured(base, inf, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        status, body = request(base, "GET", f"/infrastructures/{inf}/state",
                               headers={"Accept": "application/json"})
        if status == 200 and json.loads(body)["state"]["state"] == "configured":
            return
        if time.monotonic() > deadline:
            raise Mismatch(f"{inf} at {base} is not configured after {timeout}s: {status} {body}")
        time.sleep(0.5)


def export(base, inf):
    status, body = request(base, "GET", f"/infrastructures/{inf}/data",
                           headers={"Accept": "application/json"})
    if status != 200:
        raise Mismatch(f"export at {base} answered {status}: {body}")
    return json.loads(body)["data"]


def import_into(base, data):
    status, body = request(base, "PUT", "/infrastructures", data,
                           {"Content-Type": "application/json"})
    if status != 200:
        raise Mismatch(f"import into {base} answered {status}: {body}")
    return body.strip().rsplit("/", 1)[-1]


def observe(base, inf):
    """What a client sees: state, VM list, RADL, contmsg and each VM's info (text and
    JSON), base URL taken out."""
    seen = {}
    status, body = request(base, "GET", f"/infrastructures/{inf}/state",
                           headers={"Accept": "application/json"})
    seen["state"] = (status, json.loads(body) if status == 200 else body)
    status, body = request(base, "GET", f"/infrastructures/{inf}")
    uris = [line.replace(base, "<BASE>") for line in body.split("\n") if line]
    seen["vm list"] = (status, uris)
    for prop in ("radl", "contmsg"):
        seen[prop] = request(base, "GET", f"/infrastructures/{inf}/{prop}")
    for uri in uris:
        vm = uri.rsplit("/", 1)[-1]
        status, body = request(base, "GET", f"/infrastructures/{inf}/vms/{vm}")
        seen[f"vm {vm} info"] = (status, body)
        status, body = request(base, "GET", f"/infrastructures/{inf}/vms/{vm}",
                               headers={"Accept": "application/json"})
        seen[f"vm {vm} info (JSON)"] = (status, json.loads(body) if status == 200 else body)
    return seen


def compare(direction, source, target):
    differences = []
    for key in sorted(set(source) | set(target)):
        if source.get(key) != target.get(key):
            differences.append(f"  {key}:\n    source: {source.get(key)!r}\n"
                               f"    target: {target.get(key)!r}")
    if differences:
        raise Mismatch(f"{direction}: the imported infrastructure answers differently:\n"
                       + "\n".join(differences))
    state = source["state"][1]
    print(f"ok   {direction}: state, VM list, RADL, contmsg and VM info match "
          f"({len(source)} answers; state {json.dumps(state, sort_keys=True)})")


def without_volatile(data):
    """An export as JSON, with what may differ between instances taken out: the
    owners (IM exports their passwords, infralog never does) and the time each VM
    was last refreshed."""
    document = json.loads(data)
    document.pop("auth", None)
    for vm in document.get("vm_list", []):
        vm.pop("last_update", None)
    return document


def compare_reexports(direction, source, target, inf, data):
    """The same document imported into both servers exports the same from both,
    keys in the same order (IM's import adds `cloud_connector` last)."""
    export_at = f"/infrastructures/{inf}/data?delete=yes"
    status, body = request(source.base, "GET", export_at, headers={"Accept": "application/json"})
    if status != 200:
        raise Mismatch(f"{direction}: evicting at the source answered {status}: {body}")
    import_into(source.base, data)
    at_source, at_target = export(source.base, inf), export(target.base, inf)
    ours = at_target if target.name == "infralog" else at_source
    if not ours.endswith(', "cloud_connector": null}'):
        raise Mismatch(f"{direction}: infralog's re-export lacks cloud_connector: {ours[-120:]}")
    a, b = without_volatile(at_source), without_volatile(at_target)
    if list(a) != list(b) or a != b:
        differences = [f"  {key}:\n    source: {a.get(key)!r}\n    target: {b.get(key)!r}"
                       for key in list(dict.fromkeys(list(a) + list(b))) if a.get(key) != b.get(key)]
        raise Mismatch(f"{direction}: the re-exports differ (keys {list(a)} and {list(b)}):\n"
                       + "\n".join(differences))
    print(f"ok   {direction}: re-exports of the same document match ({len(a)} keys)")


def move(direction, source, target):
    inf = create(source.base)
    wait_configured(source.base, inf)
    # One VM stopped, so that more than one VM state travels.
    status, body = request(source.base, "PUT", f"/infrastructures/{inf}/vms/2/stop")
    if status != 200:
        raise Mismatch(f"{direction}: stopping VM 2 answered {status}: {body}")
    before = observe(source.base, inf)
    data = export(source.base, inf)
    # IM exports its owners' passwords; infralog never does.
    if source.name == "infralog" and "interop-pass" in data:
        raise Mismatch(f"{direction}: infralog's export holds the owner's password")
    imported = import_into(target.base, data)
    if imported != inf:
        raise Mismatch(f"{direction}: the import gave id {imported}, not {inf}")
    compare(direction, before, observe(target.base, inf))
    compare_reexports(direction, source, target, inf, data)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--im-python", required=True, help="python of a venv with im==2.0.0")
    parser.add_argument("--infralog", required=True, help="the infralog binary")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="im-interop-")
    servers = []
    try:
        try:
            im = start_with_retries(lambda port: Server(
                "IM", [args.im_python, os.path.join(HERE, "im_launch.py"), str(port),
                       os.path.join(work, f"im-{port}.dat"), os.path.join(work, f"im-{port}.log")],
                f"http://127.0.0.1:{port}", os.path.join(work, f"im-{port}.out")))
            servers.append(im)
            ours = start_with_retries(lambda port: Server(
                "infralog", [args.infralog, "serve", "--listen", f"127.0.0.1:{port}",
                             "--data-dir", os.path.join(work, f"infralog-{port}")],
                f"http://127.0.0.1:{port}", os.path.join(work, f"infralog-{port}.out"),
                env=dict(os.environ, RUST_LOG="warn")))
            servers.append(ours)
        except RuntimeError as error:
            print(f"FAIL {error}", file=sys.stderr)
            return 2
        failures = 0
        for direction, source, target in [("IM -> infralog", im, ours),
                                          ("infralog -> IM", ours, im)]:
            try:
                move(direction, source, target)
            except (Mismatch, OSError, ValueError, KeyError) as error:
                failures += 1
                print(f"FAIL {direction}: {error}", file=sys.stderr)
        return 1 if failures else 0
    finally:
        for server in reversed(servers):
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
