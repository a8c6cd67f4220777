// Renders /openapi.json for a person and lets them try each request. Plain
// JavaScript, no library: the page is embedded in the server and fetches
// nothing but this server's own routes.
"use strict";

const AUTH_KEY = "infralog.authorization";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Renders `code` spans and leaves everything else as text (no HTML injection).
function prose(text) {
  const span = el("span");
  String(text || "").split("`").forEach((part, index) => {
    span.append(index % 2 ? el("code", {}, part) : document.createTextNode(part));
  });
  return span;
}

function schemaText(schema) {
  if (!schema) return "";
  if (schema.enum) return schema.enum.join(" | ");
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return "array of " + schemaText(schema.items);
  return schema.type || "any";
}

function paramsTable(params) {
  if (!params.length) return el("p", {}, "None.");
  const table = el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "")));
  for (const p of params) {
    table.append(el("tr", {},
      el("td", {}, el("code", {}, p.name), p.required ? " *" : ""),
      el("td", {}, p.in), el("td", {}, schemaText(p.schema)), el("td", {}, prose(p.description))));
  }
  return table;
}

function answersTable(responses) {
  const table = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "media types"), el("th", {}, "")));
  for (const [status, answer] of Object.entries(responses)) {
    const media = Object.keys(answer.content || {}).join(", ");
    table.append(el("tr", {}, el("td", {}, el("code", {}, status)), el("td", {}, media), el("td", {}, prose(answer.description))));
  }
  return table;
}

function tryForm(method, path, op) {
  const form = el("form", { class: "try" });
  const inputs = {};
  for (const p of op.parameters || []) {
    const input = p.schema && p.schema.enum
      ? el("select", {}, ...p.schema.enum.map((v) => el("option", { value: v }, v)))
      : el("input", { type: "text", placeholder: schemaText(p.schema) });
    if (!p.required && input.tagName === "SELECT") input.prepend(el("option", { value: "" }, ""));
    inputs[p.name] = { param: p, input };
    form.append(el("label", {}, p.name + (p.required ? " *" : "")), input);
  }
  let bodyInput = null;
  let typeInput = null;
  if (op.requestBody) {
    const types = Object.keys(op.requestBody.content);
    typeInput = el("select", {}, ...types.map((t) => el("option", { value: t }, t)));
    bodyInput = el("textarea", { spellcheck: "false" });
    form.append(el("label", {}, "Content-Type"), typeInput, el("label", {}, "body"), bodyInput);
  }
  const accepts = new Set();
  for (const answer of Object.values(op.responses)) {
    for (const t of Object.keys(answer.content || {})) accepts.add(t);
  }
  const acceptInput = el("select", {}, el("option", { value: "" }, "(none: the route's default)"),
    ...[...accepts].map((t) => el("option", { value: t }, t)));
  form.append(el("label", {}, "Accept"), acceptInput);
  const output = el("pre", { class: "out", hidden: "" });
  form.append(el("span"), el("button", { type: "submit" }, "Send " + method.toUpperCase()));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const { param, input } of Object.values(inputs)) {
      const value = input.value;
      if (param.in === "path") url = url.replace("{" + param.name + "}", encodeURIComponent(value));
      else if (value !== "") query.append(param.name, value);
    }
    const qs = query.toString();
    if (qs) url += "?" + qs;
    const headers = {};
    const auth = document.getElementById("auth").value.trim();
    if (auth && op.security && op.security.length) headers["AUTHORIZATION"] = auth;
    if (acceptInput.value) headers["Accept"] = acceptInput.value;
    const init = { method: method.toUpperCase(), headers };
    if (bodyInput) {
      headers["Content-Type"] = typeInput.value;
      init.body = bodyInput.value;
    }
    output.hidden = false;
    output.textContent = init.method + " " + url + "\n…";
    try {
      const started = performance.now();
      const response = await fetch(url, init);
      const text = await response.text();
      const ms = Math.round(performance.now() - started);
      output.textContent = "";
      output.append(el("span", { class: response.ok ? "status-ok" : "status-err" },
        response.status + " " + response.statusText), " (" + ms + " ms)\n");
      for (const [name, value] of response.headers) output.append(name + ": " + value + "\n");
      output.append("\n" + text);
    } catch (error) {
      output.textContent = "The request failed: " + error;
    }
  });
  return el("div", {}, form, output);
}

function operationBlock(method, path, op) {
  const summary = el("summary", {},
    el("span", { class: "method m-" + method }, method.toUpperCase()),
    el("span", { class: "path" }, path),
    el("span", { class: "sum" }, op.summary || ""),
    el("span", { class: "lock" }, op.security && op.security.length ? "needs AUTHORIZATION" : ""));
  const body = el("div", { class: "body" },
    el("p", {}, prose(op.description)),
    el("h3", {}, "Parameters"), paramsTable(op.parameters || []));
  if (op.requestBody) {
    body.append(el("h3", {}, "Body"), el("p", {}, prose(op.requestBody.description),
      " Media types: ", Object.keys(op.requestBody.content).join(", "), "."));
  }
  body.append(el("h3", {}, "Answers"), answersTable(op.responses), el("h3", {}, "Try it"), tryForm(method, path, op));
  const details = el("details", { class: "op", id: op.operationId }, summary, body);
  details.dataset.search = (method + " " + path + " " + (op.summary || "")).toLowerCase();
  return details;
}

function render(doc) {
  document.getElementById("version").textContent = doc.info.version;
  const summary = document.getElementById("summary");
  summary.textContent = "";
  summary.append(prose(doc.info.description), " ", el("a", { href: "openapi.json" }, "openapi.json"));
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push([method, path, op]);
    }
  }
  const main = document.getElementById("operations");
  const toc = document.getElementById("toc");
  for (const { tag, ops } of byTag.values()) {
    if (!ops.length) continue;
    toc.append(el("a", { href: "#tag-" + tag.name }, tag.name));
    main.append(el("h2", { id: "tag-" + tag.name }, tag.name), el("p", {}, prose(tag.description)));
    for (const [method, path, op] of ops) main.append(operationBlock(method, path, op));
  }
}

function main() {
  const auth = document.getElementById("auth");
  auth.value = sessionStorage.getItem(AUTH_KEY) || "";
  auth.addEventListener("input", () => sessionStorage.setItem(AUTH_KEY, auth.value));
  document.getElementById("search").addEventListener("input", (event) => {
    const wanted = event.target.value.toLowerCase();
    for (const block of document.querySelectorAll("details.op")) {
      block.hidden = wanted !== "" && !block.dataset.search.includes(wanted);
    }
  });
  fetch("openapi.json", { headers: { Accept: "application/json" } })
    .then((response) => response.json())
    .then(render)
    .catch((error) => {
      document.getElementById("summary").textContent = "Cannot read openapi.json: " + error;
    });
}

main();
