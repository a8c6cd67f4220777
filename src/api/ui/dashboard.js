// infralog dashboard: plain JavaScript over the public API, no framework and no
// build step. Credentials live only in this tab's sessionStorage and travel only
// in the AUTHORIZATION header of requests to this server.
"use strict";
(() => {
  const KEY = "infralog.credentials";
  const LIST_EVERY_MS = 3000;
  const DETAIL_EVERY_MS = 2000;
  // States after which nothing changes without a request: no need to say "live".
  const SETTLED = new Set(["configured", "unconfigured", "stopped", "off", "failed", "deleted"]);
  const EXAMPLE = [
    "network net (outbound = 'yes')",
    "system node (",
    "  cpu.count >= 1 and",
    "  memory.size >= 512m and",
    "  net_interface.0.connection = 'net' and",
    "  disk.0.os.name = 'linux'",
    ")",
    "configure node (",
    "@begin",
    "- tasks:",
    "  - debug: msg=hello",
    "@end",
    ")",
    "deploy node 2",
    "contextualize (system node configure node)",
    "",
  ].join("\n");

  const TOSCA_EXAMPLE = [
    "tosca_definitions_version: tosca_simple_yaml_1_0",
    "description: one small Linux server",
    "topology_template:",
    "  inputs:",
    "    cpus:",
    "      type: integer",
    "      default: 1",
    "  node_templates:",
    "    server:",
    "      type: tosca.nodes.Compute",
    "      capabilities:",
    "        host:",
    "          properties:",
    "            num_cpus: { get_input: cpus }",
    "            mem_size: 1 GB",
    "        os:",
    "          properties:",
    "            type: linux",
    "",
  ].join("\n");

  const $ = (id) => document.getElementById(id);
  const ui = {
    credentials: null, // the text typed at sign-in
    auth: null, // the same lines joined by the two characters \n, as IM clients send them
    selected: null,
    events: [], // the selected infrastructure's history, read incrementally
    viewAt: null, // null: the present; a number: the history version shown
    generation: 0, // detail answers of an older generation are dropped (slider moved meanwhile)
    timers: [],
    // What the last detail refresh saw, so a poll that finds no new event and the
    // same state reads nothing more (every change of an infrastructure is an event).
    lastState: null,
    settling: 0, // polls left that re-read everything after new events (the read model may lag the log)
    detailRunning: null, // the refresh under way; refreshes never overlap
    detailAgain: null, // a refresh asked for meanwhile: {full}
    vmStates: [], // the VMs' states shown, for the actions that make sense
    operating: null, // the action under way ("stop", …), if any
  };

  // ---- API ----------------------------------------------------------------
  function authHeader(text) {
    return text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#"))
      .join("\\n");
  }

  function userOf(text) {
    for (const line of text.split(/\r?\n/)) {
      if (/type\s*=\s*InfrastructureManager/i.test(line)) {
        const m = /username\s*=\s*([^;]+)/.exec(line);
        if (m) return m[1].trim();
      }
    }
    return null;
  }

  async function api(method, path, options = {}) {
    const headers = { AUTHORIZATION: options.auth || ui.auth, Accept: "application/json" };
    if (options.type) headers["Content-Type"] = options.type;
    const response = await fetch(path, { method, headers, body: options.body, cache: "no-store" });
    const text = await response.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      // Not JSON (an empty answer, or text): keep the text.
    }
    if (!response.ok) {
      let message = text || response.statusText;
      if (data && typeof data === "object") {
        message = data.message || (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
      }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  const idOf = (uri) => uri.split("/").pop();
  const uris = (data) => ((data && data["uri-list"]) || []).map((item) => item.uri);
  const atQuery = () => (ui.viewAt ? `?at=${ui.viewAt}` : "");

  // ---- small DOM helpers ----------------------------------------------------
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function badge(state) {
    const name = state || "unknown";
    return el("span", { class: `badge s-${name.replace(/[^a-z]/g, "")}`, text: name });
  }

  function showError(id, message) {
    const box = $(id);
    box.textContent = message || "";
    box.hidden = !message;
  }

  let toastTimer = null;
  function toast(message) {
    const box = $("toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (box.hidden = true), 2600);
  }

  const time = (iso) => {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour12: false });
  };

  // ---- sign-in ----------------------------------------------------------------
  async function signIn(text) {
    const auth = authHeader(text);
    if (!userOf(text)) {
      throw new Error("Add an InfrastructureManager line, e.g. id = im; type = InfrastructureManager; username = u; password = p");
    }
    await api("GET", "/infrastructures", { auth });
    ui.credentials = text;
    ui.auth = auth;
    sessionStorage.setItem(KEY, text);
    $("user-name").textContent = userOf(text);
    $("who").hidden = false;
    $("signin-view").hidden = true;
    $("app-view").hidden = false;
    startPolling();
    const fromHash = /^#\/infrastructures\/([\w-]+)$/.exec(location.hash);
    if (fromHash) selectInfrastructure(fromHash[1]);
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    ui.timers.forEach(clearTimeout);
    ui.timers = [];
    Object.assign(ui, { credentials: null, auth: null, selected: null, events: [], viewAt: null, lastState: null });
    $("infra-list").replaceChildren();
    $("who").hidden = true;
    $("app-view").hidden = true;
    $("signin-view").hidden = false;
    history.replaceState(null, "", location.pathname);
  }

  // ---- polling ----------------------------------------------------------------
  // A hidden tab asks nothing: its polls are skipped, and it catches up at once
  // when it is shown again.
  const hidden = () => document.visibilityState === "hidden";

  function every(ms, task) {
    const run = async () => {
      if (!ui.auth) return;
      if (!hidden()) {
        try {
          await task();
        } catch (_) {
          // Each task reports its own failures; the loop keeps going.
        }
      }
      if (ui.auth) ui.timers.push(setTimeout(run, ms));
    };
    run();
  }

  function startPolling() {
    every(LIST_EVERY_MS, refreshList);
    every(DETAIL_EVERY_MS, () => refreshDetail());
  }

  document.addEventListener("visibilitychange", () => {
    if (hidden() || !ui.auth) return;
    refreshList();
    refreshDetail();
  });

  // ---- the list -----------------------------------------------------------------
  async function refreshList() {
    try {
      const ids = uris(await api("GET", "/infrastructures")).map(idOf);
      const states = await Promise.all(
        ids.map((id) => api("GET", `/infrastructures/${id}/state`).then((d) => d.state, () => null))
      );
      renderList(ids, states);
      $("poll-status").textContent = `Updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    } catch (error) {
      $("poll-status").textContent = `Cannot update: ${error.message}`;
    }
  }

  function renderList(ids, states) {
    const items = ids.map((id, i) => {
      const state = states[i];
      const vms = state ? Object.keys(state.vm_states || {}).length : 0;
      const item = el(
        "li",
        { class: `infra-item${id === ui.selected ? " selected" : ""}`, "data-id": id, title: id, tabindex: "0" },
        el("div", {}, el("div", { class: "mono", text: id.slice(0, 8) }), el("div", { class: "sub", text: `${vms} VM${vms === 1 ? "" : "s"}` })),
        badge(state ? state.state : "unknown")
      );
      item.addEventListener("click", () => selectInfrastructure(id));
      item.addEventListener("keydown", (e) => e.key === "Enter" && selectInfrastructure(id));
      return item;
    });
    $("infra-list").replaceChildren(...items);
    $("infra-count").textContent = String(ids.length);
    $("infra-empty").hidden = ids.length > 0;
  }

  // ---- one infrastructure -----------------------------------------------------------
  function show(view) {
    for (const id of ["welcome", "create-view", "detail-view"]) $(id).hidden = id !== view;
  }

  function selectInfrastructure(id) {
    Object.assign(ui, { selected: id, events: [], viewAt: null, lastState: null, settling: 0 });
    ui.generation += 1;
    history.replaceState(null, "", `#/infrastructures/${id}`);
    for (const item of document.querySelectorAll(".infra-item")) {
      item.classList.toggle("selected", item.dataset.id === id);
    }
    $("detail-id").textContent = id;
    $("detail-state").replaceWith(Object.assign(badge("…"), { id: "detail-state" }));
    $("vm-rows").replaceChildren();
    $("radl").textContent = "";
    $("contmsg").textContent = "";
    $("timeline").replaceChildren();
    delete $("timeline").dataset.shown;
    showError("action-error", "");
    show("detail-view");
    refreshDetail({ full: true });
  }

  // Refreshes the selected infrastructure. A poll reads only the events after the
  // last one the page has (`?from=`) and the state; the VMs, RADL and contmsg are
  // read again only when something changed (`full` forces it: a selection, an
  // action, a move in the history). Refreshes never overlap: one asked for while
  // another runs follows it.
  async function refreshDetail(options = {}) {
    if (ui.detailRunning) {
      ui.detailAgain = { full: Boolean(options.full || (ui.detailAgain && ui.detailAgain.full)) };
      return ui.detailRunning;
    }
    ui.detailRunning = refreshDetailOnce(Boolean(options.full));
    try {
      await ui.detailRunning;
    } finally {
      ui.detailRunning = null;
    }
    const again = ui.detailAgain;
    ui.detailAgain = null;
    if (again) await refreshDetail(again);
  }

  // The events after `after`, every page of them.
  async function eventsAfter(base, after) {
    const events = [];
    let from = after + 1;
    for (;;) {
      const page = await api("GET", `${base}/events?from=${from}`);
      events.push(...(page.events || []));
      if (page.next == null) return events;
      from = page.next;
    }
  }

  async function refreshDetailOnce(full) {
    const id = ui.selected;
    if (!id) return;
    const generation = ui.generation;
    const base = `/infrastructures/${id}`;
    const at = atQuery();
    const known = ui.events.length ? ui.events[ui.events.length - 1].version : 0;
    try {
      const [fresh, state] = await Promise.all([eventsAfter(base, known), api("GET", `${base}/state${at}`)]);
      if (generation !== ui.generation || id !== ui.selected) return;
      const stateText = JSON.stringify(state.state);
      // In the past the answers at that version never change; live, new events
      // (or a state that moved) mean the rest changed too.
      const live = ui.viewAt === null;
      const changed = full || stateText !== ui.lastState || (live && (fresh.length > 0 || ui.settling > 0));
      // The read model follows the log within moments: after new events, the
      // next poll reads everything again too.
      ui.settling = fresh.length > 0 ? 1 : Math.max(0, ui.settling - 1);
      ui.events = ui.events.concat(fresh);
      appendTimeline(fresh);
      if (!changed) {
        renderTimeline();
        return;
      }
      const [vmList, radl, contmsg] = await Promise.all([
        api("GET", `${base}${at}`),
        api("GET", `${base}/radl${at}`),
        api("GET", `${base}/contmsg${at}`),
      ]);
      const vmIds = uris(vmList).map(idOf);
      const vmInfo = await Promise.all(
        vmIds.map((vm) => api("GET", `${base}/vms/${vm}${at}`).then((d) => d.radl, () => null))
      );
      if (generation !== ui.generation || id !== ui.selected) return;
      ui.lastState = stateText;
      renderDetail(state.state, vmIds, vmInfo, radl.radl, contmsg.contmsg);
    } catch (error) {
      if (generation !== ui.generation || id !== ui.selected) return;
      if (error.status === 404 || error.status === 403) {
        // Destroyed (here or elsewhere) or no longer ours.
        ui.selected = null;
        history.replaceState(null, "", location.pathname);
        show("welcome");
        return;
      }
      showError("action-error", error.message);
    }
  }

  function renderDetail(state, vmIds, vmInfo, radl, contmsg) {
    $("detail-state").replaceWith(Object.assign(badge(state.state), { id: "detail-state" }));
    const count = vmIds.length;
    $("detail-vmcount").textContent = `${count} VM${count === 1 ? "" : "s"}` + (ui.viewAt ? ` · at version ${ui.viewAt}` : "");
    renderVms(vmIds, vmInfo, state.vm_states || {});
    $("radl").textContent = radl || "";
    const log = $("contmsg");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    if (log.textContent !== (contmsg || "")) {
      log.textContent = contmsg || "";
      if (atBottom || ui.viewAt) log.scrollTop = log.scrollHeight;
    }
    if (!log.textContent) log.textContent = "(empty)";
    $("contmsg-live").hidden = ui.viewAt !== null || SETTLED.has(state.state);
    renderTimeline();
    ui.vmStates = Object.values(state.vm_states || {});
    updateActions();
  }

  function renderVms(vmIds, vmInfo, vmStates) {
    const rows = vmIds.map((vm, i) => {
      const radl = vmInfo[i] || [];
      const system = radl.find((item) => item.class === "system") || {};
      const ips = Object.keys(system)
        .filter((key) => /^net_interface\.\d+\.ip$/.test(key))
        .map((key) => system[key]);
      return el(
        "tr",
        { "data-vm": vm },
        el("td", { class: "mono", text: vm }),
        el("td", { text: system.id || "" }),
        el("td", {}, badge(vmStates[vm] || system.state)),
        el("td", { class: "mono", text: ips.join(", ") || "—" }),
        el("td", { text: system["provider.type"] || "" })
      );
    });
    $("vm-rows").replaceChildren(...rows);
    $("vm-empty").hidden = rows.length > 0;
  }

  // ---- history ------------------------------------------------------------------------
  function humanType(type) {
    const words = type.replace(/([a-z])([A-Z])/g, "$1 $2").split(" ");
    return words
      .map((word, i) => (word === "Vm" ? "VM" : i === 0 ? word : word.toLowerCase()))
      .join(" ");
  }

  function eventKind(event) {
    const type = event.type;
    if (type === "InfrastructureCreated") return "k-create";
    if (type === "ContextualizationFinished") return event.data && event.data.configured ? "k-ok" : "k-bad";
    if (/Destroyed|Failed|Removed/.test(type)) return "k-bad";
    if (type === "VmStopped") return "k-stop";
    if (type === "VmStarted") return "k-ok";
    if (type.startsWith("Contextualization")) return "k-ctx";
    if (type.startsWith("Vm") || type.startsWith("Resources")) return "k-vm";
    return "";
  }

  function eventDetail(event) {
    const data = event.data || {};
    switch (event.type) {
      case "InfrastructureCreated":
        return `owners: ${(data.owners || []).map((o) => o.username).join(", ")}`;
      case "ResourcesRequested":
        return `${(data.vms || []).length} VM(s) requested`;
      case "VmLaunched":
        return data.cloud ? `VM ${event.vm} on ${data.cloud.id} (${data.cloud.kind})` : `VM ${event.vm}`;
      case "ResourcesLaunched":
        return `launched ${(data.launched || []).join(", ") || "none"}; failed ${(data.failed || []).length}`;
      case "ContextualizationStarted":
        return `run ${data.run} on VMs ${(data.vm_ids || []).join(", ")}`;
      case "ContextualizationProgressed":
        return data.message || "";
      case "ContextualizationFinished":
        return data.configured ? "configured" : "not configured";
      default:
        return event.vm != null ? `VM ${event.vm}` : "";
    }
  }

  // Adds the events just read to the list; what is already there stays.
  function appendTimeline(fresh) {
    if (!fresh.length) return;
    const items = fresh.map((event) => {
      const item = el(
        "li",
        { class: eventKind(event), "data-version": event.version },
        el("span", { class: "v", text: `v${event.version}` }),
        el("span", { class: "dot" }),
        el("span", { class: "what" }, el("b", { text: humanType(event.type) }), " ", el("span", { text: eventDetail(event) })),
        el("span", { class: "t", text: time(event.time) })
      );
      item.addEventListener("click", () => travelTo(event.version));
      return item;
    });
    $("timeline").append(...items);
    // Marked again below, with the new events in.
    delete $("timeline").dataset.shown;
  }

  function renderTimeline() {
    const events = ui.events;
    const slider = $("timeline-slider");
    const last = events.length ? events[events.length - 1].version : 1;
    const first = events.length ? events[0].version : 1;
    slider.min = String(first);
    slider.max = String(last);
    // Live: the slider follows the newest event; in the past it stays put.
    if (ui.viewAt === null) slider.value = String(last);
    $("slider-max").textContent = `v${last}`;
    $("timeline-summary").textContent = `${events.length} event${events.length === 1 ? "" : "s"}`;
    renderBanner();
    markShown(ui.viewAt === null ? last : ui.viewAt);
  }

  // Marks the event shown and greys those after it.
  function markShown(shown) {
    const list = $("timeline");
    if (list.dataset.shown === String(shown)) return;
    list.dataset.shown = String(shown);
    for (const item of list.children) {
      const version = Number(item.dataset.version);
      item.classList.toggle("current", version === shown);
      item.classList.toggle("future", version > shown);
    }
    scrollToCurrent();
  }

  // Scrolls the event list only, never the page, to the event shown.
  function scrollToCurrent() {
    const list = $("timeline");
    const current = list.querySelector(".current");
    // The list is positioned, so offsetTop is measured from its top.
    if (current) list.scrollTop = current.offsetTop - list.clientHeight / 2;
  }

  function renderBanner() {
    const events = ui.events;
    const last = events.length ? events[events.length - 1].version : 1;
    $("history-banner").hidden = ui.viewAt === null;
    if (ui.viewAt === null) return;
    const event = events.find((e) => e.version === ui.viewAt);
    $("history-text").textContent = `As it was at version ${ui.viewAt} of ${last}` +
      (event ? ` — ${humanType(event.type)}, ${time(event.time)}` : "") + ". Actions are off in the past.";
  }

  function travelTo(version) {
    const last = ui.events.length ? ui.events[ui.events.length - 1].version : version;
    ui.viewAt = version >= last ? null : version;
    const shown = Math.min(version, last);
    $("timeline-slider").value = String(shown);
    // Say at once which version is asked for; its data follows with the answers.
    renderBanner();
    markShown(shown);
    ui.generation += 1;
    refreshDetail({ full: true });
  }

  // ---- operations ------------------------------------------------------------------------
  function contentTypeOf(text) {
    const trimmed = text.trim();
    if (/^tosca_definitions_version\s*:/m.test(trimmed)) return ["text/yaml", "TOSCA"];
    if (trimmed.startsWith("[") || trimmed.startsWith("{")) return ["application/json", "RADL-JSON"];
    return ["text/plain", "RADL"];
  }

  async function create() {
    const text = $("create-text").value;
    const [type] = contentTypeOf(text);
    const button = $("create-btn");
    button.disabled = true;
    button.textContent = "Creating…";
    showError("create-error", "");
    try {
      const answer = await api("POST", "/infrastructures", { type, body: text });
      const id = idOf(answer.uri);
      toast("Infrastructure created");
      await refreshList();
      selectInfrastructure(id);
    } catch (error) {
      showError("create-error", `${error.status || ""} ${error.message}`.trim());
    } finally {
      button.disabled = false;
      button.textContent = "Create";
    }
  }

  const ACTIONS = {
    stop: ["stop-btn", "Stopping…"],
    start: ["start-btn", "Starting…"],
    reconfigure: ["reconfigure-btn", "Reconfiguring…"],
    destroy: ["destroy-btn", "Destroying…"],
  };
  const isStopped = (state) => state === "stopped" || state === "off";

  // Actions are off in the past and while one is under way; Stop needs a VM that
  // is not stopped, Start a stopped one.
  function updateActions() {
    const off = ui.viewAt !== null || ui.operating !== null;
    const states = ui.vmStates || [];
    const allStopped = states.length > 0 && states.every(isStopped);
    const enable = {
      stop: !off && !allStopped,
      start: !off && states.some(isStopped),
      reconfigure: !off,
      destroy: !off,
    };
    const why = {
      stop: allStopped ? "Every VM is stopped" : "Stop every VM",
      start: states.some(isStopped) ? "Start the stopped VMs" : "No VM is stopped",
      reconfigure: "Run contextualization again on every VM",
      destroy: "Delete every VM (asks first)",
    };
    for (const [operation, [button, busyLabel]] of Object.entries(ACTIONS)) {
      const node = $(button);
      node.disabled = !enable[operation];
      node.title = ui.viewAt !== null ? "Actions are off in the past" : why[operation];
      const label = node.dataset.label || (node.dataset.label = node.textContent);
      node.textContent = ui.operating === operation ? busyLabel : label;
      node.classList.toggle("busy", ui.operating === operation);
    }
  }

  async function operate(operation, label) {
    const id = ui.selected;
    if (!id || ui.operating) return;
    showError("action-error", "");
    ui.operating = operation;
    updateActions();
    try {
      if (operation === "destroy") await api("DELETE", `/infrastructures/${id}`);
      else await api("PUT", `/infrastructures/${id}/${operation}`);
      toast(label);
      if (operation === "destroy") {
        ui.selected = null;
        history.replaceState(null, "", location.pathname);
        show("welcome");
      }
      refreshList();
      refreshDetail({ full: true });
    } catch (error) {
      showError("action-error", error.message);
    } finally {
      ui.operating = null;
      updateActions();
    }
  }

  // ---- wiring ------------------------------------------------------------------------------
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("signin-error", "");
    $("signin-btn").disabled = true;
    try {
      await signIn($("auth-lines").value);
    } catch (error) {
      showError("signin-error", error.message);
    } finally {
      $("signin-btn").disabled = false;
    }
  });
  $("signout-btn").addEventListener("click", signOut);
  $("new-btn").addEventListener("click", () => {
    showError("create-error", "");
    show("create-view");
    $("create-text").focus();
  });
  $("create-cancel").addEventListener("click", () => show(ui.selected ? "detail-view" : "welcome"));
  for (const [button, example] of [["example-btn", EXAMPLE], ["tosca-example-btn", TOSCA_EXAMPLE]]) {
    $(button).addEventListener("click", () => {
      $("create-text").value = example;
      $("create-text").dispatchEvent(new Event("input"));
    });
  }
  $("create-text").addEventListener("input", () => {
    const text = $("create-text").value;
    $("create-kind").textContent = text.trim() ? `— read as ${contentTypeOf(text)[1]}` : "";
  });
  $("create-btn").addEventListener("click", create);
  $("stop-btn").addEventListener("click", () => operate("stop", "Stop requested"));
  $("start-btn").addEventListener("click", () => operate("start", "Start requested"));
  $("reconfigure-btn").addEventListener("click", () => operate("reconfigure", "Reconfiguration started"));
  $("destroy-btn").addEventListener("click", () => {
    $("confirm-id").textContent = ui.selected;
    $("confirm-modal").hidden = false;
    $("confirm-cancel").focus();
  });
  const closeModal = () => ($("confirm-modal").hidden = true);
  $("confirm-cancel").addEventListener("click", closeModal);
  $("confirm-destroy").addEventListener("click", () => {
    closeModal();
    operate("destroy", "Infrastructure destroyed");
  });
  document.addEventListener("keydown", (event) => event.key === "Escape" && closeModal());
  $("timeline-slider").addEventListener("input", (event) => travelTo(Number(event.target.value)));
  $("live-btn").addEventListener("click", () => travelTo(Number.MAX_SAFE_INTEGER));

  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    $("auth-lines").value = saved;
    signIn(saved).catch((error) => {
      $("signin-view").hidden = false;
      showError("signin-error", error.message);
    });
  } else {
    $("signin-view").hidden = false;
  }
})();
