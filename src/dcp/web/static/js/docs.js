// The API reference's Try It Out: sends the chosen request to this same server and shows the answer.
// Keys typed here live only in their inputs: never stored, never put in a URL, shown as variables in curl.
"use strict";

const STREAM_SECONDS = 20; // an event stream is followed this long, then cut
const MAX_SHOWN_CHARS = 200000;
const TEXT_TYPES = /json|^text\/|yaml|xml|javascript|x-sh|powershell/;

class InputProblem extends Error {}

function panel() {
  return document.getElementById("try-it");
}

function message(name, values = {}) {
  let text = panel().dataset[name] || "";
  for (const [key, value] of Object.entries(values)) text = text.replace(`{${key}}`, value);
  return text;
}

function showOperation(slug) {
  for (const fieldset of panel().querySelectorAll("[data-op]")) fieldset.hidden = fieldset.dataset.op !== slug;
  document.getElementById("try-op").value = slug;
}

function chosenOperation() {
  const slug = document.getElementById("try-op").value;
  return [...panel().querySelectorAll("[data-op]")].find((fieldset) => fieldset.dataset.op === slug);
}

// The first key field the endpoint accepts that the user filled in, as [input, value].
function chosenKey(fieldset) {
  const schemes = (fieldset.dataset.auth || "").split(" ").filter(Boolean);
  const inputs = schemes.map((scheme) => panel().querySelector(`input[data-scheme="${scheme}"]`)).filter(Boolean);
  const filled = inputs.find((input) => input.value.trim());
  if (filled) return [filled, filled.value.trim()];
  return inputs.length ? [inputs[0], ""] : null;
}

function encodedPathValue(value) {
  return value.split("/").map(encodeURIComponent).join("/");
}

function buildRequest(fieldset) {
  let path = fieldset.dataset.path;
  const query = new URLSearchParams();
  const headers = {};
  for (const input of fieldset.querySelectorAll("[data-param-name]")) {
    const name = input.dataset.paramName;
    const value = input.value.trim();
    if (input.dataset.paramIn === "path") {
      if (!value) throw new InputProblem(message("msgMissing", { name }));
      path = path.replace(`{${name}}`, encodedPathValue(value));
    } else if (value && input.dataset.paramIn === "query") {
      query.append(name, value);
    } else if (value && input.dataset.paramIn === "header") {
      headers[name] = value;
    }
  }
  let body;
  const bodyInput = fieldset.querySelector("[data-body]");
  if (bodyInput && bodyInput.value.trim()) {
    try {
      body = JSON.stringify(JSON.parse(bodyInput.value));
    } catch {
      throw new InputProblem(message("msgBadJson"));
    }
    headers["Content-Type"] = "application/json";
  }
  const search = query.toString();
  return { method: fieldset.dataset.method, url: search ? `${path}?${search}` : path, headers, body };
}

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

// The same request for a terminal; the key appears as a shell variable, never as itself.
function showCurl(request, key) {
  const lines = [`curl -s -X ${request.method} ${shellQuote(window.location.origin + request.url)}`];
  if (key) lines.push(`-H "${key[0].dataset.header}: $${key[0].dataset.variable}"`);
  for (const [name, value] of Object.entries(request.headers)) lines.push(`-H ${shellQuote(`${name}: ${value}`)}`);
  if (request.body) lines.push(`-d ${shellQuote(request.body)}`);
  document.querySelector("#try-curl code").textContent = lines.join(" \\\n  ");
}

function setStatus(text, kind) {
  const status = document.getElementById("try-status");
  status.textContent = text;
  status.classList.remove("status-ok", "status-error", "status-wait");
  if (kind) status.classList.add(`status-${kind}`);
}

function showHeaders(response) {
  const list = document.getElementById("try-headers");
  list.replaceChildren();
  for (const [name, value] of response.headers) {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value;
    list.append(term, detail);
  }
}

function showBodyText(text) {
  document.querySelector("#try-body code").textContent = text;
}

function pretty(text, type) {
  if (!type.includes("json")) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// Reads the answer as it arrives (an event stream shows its events live), up to a time and size limit.
async function showBody(response, controller) {
  const type = response.headers.get("content-type") || "";
  if (!response.body) return showBodyText(message("msgEmpty"));
  if (!TEXT_TYPES.test(type)) {
    const size = (await response.blob()).size;
    return showBodyText(message("msgBinary", { bytes: String(size), type }));
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const timer = setTimeout(() => controller.abort(), STREAM_SECONDS * 1000);
  let text = "";
  let stopped = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      showBodyText(text);
      if (text.length > MAX_SHOWN_CHARS) {
        stopped = true;
        controller.abort();
        break;
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
    stopped = true;
  } finally {
    clearTimeout(timer);
  }
  const shown = text ? pretty(text, type) : message("msgEmpty");
  showBodyText(stopped ? `${shown}\n\n// ${message("msgStopped")}` : shown);
}

async function send(fieldset) {
  let request;
  try {
    request = buildRequest(fieldset);
  } catch (error) {
    if (!(error instanceof InputProblem)) throw error;
    setStatus(error.message, "error");
    return;
  }
  const key = chosenKey(fieldset);
  showCurl(request, key);
  const headers = { ...request.headers };
  if (key && key[1]) headers[key[0].dataset.header] = key[1];
  setStatus(message("msgSending"), "wait");
  document.getElementById("try-headers").replaceChildren();
  showBodyText("");
  const controller = new AbortController();
  let response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers,
      body: request.body,
      credentials: "omit",
      cache: "no-store",
      signal: controller.signal,
    });
  } catch {
    setStatus(message("msgNetwork"), "error");
    return;
  }
  setStatus(`${response.status} ${response.statusText}`.trim(), response.ok ? "ok" : "error");
  showHeaders(response);
  await showBody(response, controller);
}

// data-state on the panel says when an answer is complete (tests wait on it, screen readers get aria-live).
async function execute(event) {
  event.preventDefault();
  const fieldset = chosenOperation();
  if (!fieldset) return;
  panel().dataset.state = "running";
  try {
    await send(fieldset);
  } finally {
    panel().dataset.state = "done";
  }
}

function setUpTryItOut() {
  if (!panel()) return;
  const select = document.getElementById("try-op");
  select.addEventListener("change", () => showOperation(select.value));
  showOperation(select.value);
  document.getElementById("try-form").addEventListener("submit", execute);
  for (const button of document.querySelectorAll("[data-try]")) {
    button.addEventListener("click", () => {
      showOperation(button.dataset.try);
      panel().scrollIntoView({ block: "start" });
      select.focus();
    });
  }
}

document.addEventListener("DOMContentLoaded", setUpTryItOut);
