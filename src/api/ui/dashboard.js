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

  const $ = (id) => document.getElementById(id);
  const ui = {
    credentials: null, // the text typed at sign-in
    auth: null, // the same lines joined by the two characters \n, as IM clients send them
    selected: null,
    events: [],
    viewAt: null, // null: the present; a number: the history version shown
    generation: 0, // detail answers of an older generation are dropped (slider moved meanwhile)
    timers: [],
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
    Object.assign(ui, { credentials: null, auth: null, selected: null, events: [], viewAt: null });
    $("infra-list").replaceChildren();
    $("who").hidden = true;
    $("app-view").hidden = true;
    $("signin-view").hidden = false;
    history.replaceState(null, "", location.pathname);
  }

  // ---- polling ----------------------------------------------------------------
  function every(ms, task) {
    const run = async () => {
      if (!ui.auth) return;
      if (!document.hidden) {
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
    Object.assign(ui, { selected: id, events: [], viewAt: null });
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
    showError("action-error", "");
    show("detail-view");
    refreshDetail();
  }

  async function refreshDetail() {
    const id = ui.selected;
    if (!id) return;
    const generation = ui.generation;
    const base = `/infrastructures/${id}`;
    const at = atQuery();
    try {
      const [events, state, vmList, radl, contmsg] = await Promise.all([
        api("GET", `${base}/events`),
        api("GET", `${base}/state${at}`),
        api("GET", `${base}${at}`),
        api("GET", `${base}/radl${at}`),
        api("GET", `${base}/contmsg${at}`),
      ]);
      const vmIds = uris(vmList).map(idOf);
      const vmInfo = await Promise.all(
        vmIds.map((vm) => api("GET", `${base}/vms/${vm}${at}`).then((d) => d.radl, () => null))
      );
      if (generation !== ui.generation || id !== ui.selected) return;
      renderDetail(events.events || [], state.state, vmIds, vmInfo, radl.radl, contmsg.contmsg);
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

  function renderDetail(events, state, vmIds, vmInfo, radl, contmsg) {
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
    renderTimeline(events);
    const past = ui.viewAt !== null;
    for (const button of ["stop-btn", "start-btn", "reconfigure-btn", "destroy-btn"]) $(button).disabled = past;
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

  function renderTimeline(events) {
    const slider = $("timeline-slider");
    const last = events.length ? events[events.length - 1].version : 1;
    const first = events.length ? events[0].version : 1;
    slider.min = String(first);
    slider.max = String(last);
    // Live: the slider follows the newest event; in the past it stays put.
    if (ui.viewAt === null) slider.value = String(last);
    $("slider-max").textContent = `v${last}`;
    const shown = ui.viewAt === null ? last : ui.viewAt;
    const changed = events.length !== ui.events.length || $("timeline").dataset.shown !== String(shown);
    ui.events = events;
    $("timeline-summary").textContent = `${events.length} events`;
    renderBanner();
    if (!changed) return;
    $("timeline").dataset.shown = String(shown);
    const items = events.map((event) => {
      const classes = [eventKind(event)];
      if (event.version === shown) classes.push("current");
      if (event.version > shown) classes.push("future");
      const item = el(
        "li",
        { class: classes.join(" "), "data-version": event.version },
        el("span", { class: "v", text: `v${event.version}` }),
        el("span", { class: "dot" }),
        el("span", { class: "what" }, el("b", { text: humanType(event.type) }), " ", el("span", { text: eventDetail(event) })),
        el("span", { class: "t", text: time(event.time) })
      );
      item.addEventListener("click", () => travelTo(event.version));
      return item;
    });
    $("timeline").replaceChildren(...items);
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
    for (const item of $("timeline").children) {
      const itemVersion = Number(item.dataset.version);
      item.classList.toggle("current", itemVersion === shown);
      item.classList.toggle("future", itemVersion > shown);
    }
    $("timeline").dataset.shown = String(shown);
    scrollToCurrent();
    ui.generation += 1;
    refreshDetail();
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

  async function operate(operation, label) {
    const id = ui.selected;
    if (!id) return;
    showError("action-error", "");
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
      refreshDetail();
    } catch (error) {
      showError("action-error", error.message);
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
  $("example-btn").addEventListener("click", () => {
    $("create-text").value = EXAMPLE;
    $("create-text").dispatchEvent(new Event("input"));
  });
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
