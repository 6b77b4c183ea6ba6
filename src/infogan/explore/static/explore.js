// infogan explore: the controls drive /api/image (or /api/traverse) for every loaded model;
// an uploaded image goes to /api/encode and Q's codes set the controls. No other server is used.
"use strict";

const $ = (id) => document.getElementById(id);
const LETTERS = "ABCDEFGH";
const state = { codes: {}, seed: 0, low: -2, high: 2, mode: "image", sweep: null, steps: 10, version: 0 };
const changedAt = new Map(); // version -> time of the input that made it
let info = null;
let views = [];

// What the page shows, for tests and the curious: the newest state's number (version) and
// every image update with its latency, from the input that asked for it to the image shown.
window.explore = { timings: [], ready: false, version: 0 };

function element(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

// -- messages -------------------------------------------------------------------------------

let messageSource = null;

function showMessage(text, source) {
  $("message-text").textContent = text;
  $("message").hidden = false;
  messageSource = source;
}

function clearMessage(source) {
  if (source === undefined || source === messageSource) {
    $("message").hidden = true;
    messageSource = null;
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) {
    // not JSON: fall through
  }
  return `the server answered ${response.status} ${response.statusText}`;
}

// -- queries --------------------------------------------------------------------------------

function codeQuery(codes) {
  const query = new URLSearchParams();
  for (const control of info.controls) query.set(control.name, String(codes[control.name]));
  query.set("seed", String(state.seed));
  return query;
}

function sweepValues() {
  const control = info.controls.find((c) => c.name === state.sweep);
  if (control.kind === "categorical") return [...Array(control.size).keys()];
  const step = (state.high - state.low) / (state.steps - 1);
  return [...Array(state.steps).keys()].map((i) => state.low + i * step);
}

function requestFor(index) {
  const query = codeQuery(state.codes);
  query.set("run", String(index));
  if (state.mode === "traverse") {
    query.set("code", state.sweep);
    query.set("steps", String(state.steps));
    query.set("low", String(state.low));
    query.set("high", String(state.high));
    return `/api/traverse?${query}`;
  }
  return `/api/image?${query}`;
}

// -- one model's output: at most one request in flight, the newest state wins -----------------

class View {
  constructor(index, run) {
    this.index = index;
    this.run = run;
    this.busy = false;
    this.pending = null;
    this.objectUrl = null;
    const letter = info.runs.length > 1 ? `${LETTERS[index]}: ` : "";
    this.image = element("img", { id: `image-${index}`, alt: `image from ${run.name}` });
    this.values = element("div", { className: "values" });
    this.figure = element("figure", { className: "output" }, [
      element("figcaption", { textContent: `${letter}${run.name}` }),
      this.image,
      this.values,
    ]);
    if (run.error) {
      this.image.hidden = true;
      this.figure.append(element("p", { className: "run-error", textContent: run.error }));
    }
  }

  request(url, version) {
    if (this.run.error) return;
    if (this.busy) {
      this.pending = { url, version };
      return;
    }
    this.busy = true;
    this.fetch(url, version).finally(() => {
      this.busy = false;
      if (this.pending) {
        const next = this.pending;
        this.pending = null;
        this.request(next.url, next.version);
      }
    });
  }

  async fetch(url, version) {
    let response;
    try {
      response = await fetch(url);
    } catch (error) {
      showMessage(`the explorer's server cannot be reached (${error.message}); is it still running?`, "image");
      return;
    }
    if (!response.ok) {
      showMessage(await errorText(response), "image");
      return;
    }
    const objectUrl = URL.createObjectURL(await response.blob());
    const probe = new Image();
    probe.src = objectUrl;
    try {
      await probe.decode();
    } catch (_) {
      URL.revokeObjectURL(objectUrl);
      showMessage("the server sent an image the browser cannot show", "image");
      return;
    }
    this.image.src = objectUrl;
    this.image.dataset.query = url.slice(url.indexOf("?") + 1);
    this.image.dataset.version = String(version);
    this.image.classList.toggle("strip", url.startsWith("/api/traverse"));
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = objectUrl;
    this.showValues(url.startsWith("/api/traverse"));
    clearMessage("image");
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    const ms = performance.now() - changedAt.get(version);
    window.explore.timings.push({ run: this.index, version, ms });
    $("timing").textContent = `last image shown ${ms.toFixed(0)} ms after the change`;
  }

  showValues(traversal) {
    this.values.replaceChildren();
    if (!traversal) return;
    const control = info.controls.find((c) => c.name === state.sweep);
    for (const value of sweepValues()) {
      const text = control.kind === "categorical" ? valueTitle(this.run, control.name, value) : value.toFixed(2);
      this.values.append(element("span", { textContent: text }));
    }
  }
}

function update(event) {
  state.version += 1;
  window.explore.version = state.version;
  changedAt.set(state.version, event && event.timeStamp ? event.timeStamp : performance.now());
  for (const view of views) view.request(requestFor(view.index), state.version);
}

// -- controls -------------------------------------------------------------------------------

function loadedRuns() {
  return info.runs.filter((run) => !run.error);
}

function valueTitle(run, name, value) {
  const values = run.codes && run.codes[name].values;
  return values && values[value] ? `${value} → ${values[value]}` : String(value);
}

function codeTitle(name) {
  // The titles that say what the code was matched to ("c1 (digit)"); the bare name if none does.
  const labels = loadedRuns().map((run) => run.codes[name]).filter((label) => label.factors.length);
  const titles = [...new Set(labels.map((label) => label.title))];
  return titles.length ? titles.join(" / ") : name;
}

function boundText(name) {
  return loadedRuns()
    .map((run) => {
      const label = run.codes[name];
      const parts = [];
      if (label.accuracy !== null) parts.push(`accuracy ${(100 * label.accuracy).toFixed(1)}%`);
      if (label.bound !== null) {
        parts.push(`I ≥ ${label.bound.toFixed(2)} nats (H = ${label.entropy.toFixed(2)})`);
      }
      const letter = info.runs.length > 1 ? `${LETTERS[info.runs.indexOf(run)]}: ` : "";
      return parts.length ? letter + parts.join(", ") : "";
    })
    .filter((text) => text)
    .join(" · ");
}

function buildCategorical(control) {
  const select = element("select", { id: `code-${control.name}` });
  for (let k = 0; k < control.size; k += 1) {
    const labels = loadedRuns().map((run) => (run.codes[control.name].values || [])[k] || "");
    const matched = labels.some((label) => label) ? ` → ${labels.map((l) => l || "–").join(" | ")}` : "";
    select.append(element("option", { value: String(k), textContent: `${k}${matched}` }));
  }
  select.addEventListener("change", (event) => {
    state.codes[control.name] = Number(select.value);
    update(event);
  });
  return [select];
}

function buildContinuous(control) {
  const slider = element("input", { id: `code-${control.name}`, type: "range", step: "0.01" });
  const exact = element("input", { id: `value-${control.name}`, type: "number", step: "any", className: "exact" });
  exact.setAttribute("aria-label", `${control.name} value`);
  slider.addEventListener("input", (event) => {
    state.codes[control.name] = Number(slider.value);
    exact.value = slider.value;
    update(event);
  });
  exact.addEventListener("change", (event) => {
    const value = Number(exact.value);
    if (exact.value.trim() === "" || !Number.isFinite(value)) {
      showMessage(`${control.name}: give a number`, "input");
    } else if (value < state.low || value > state.high) {
      showMessage(
        `${control.name} = ${exact.value} is out of range: the sliders go from ${state.low} to ${state.high}; ` +
          `widen the slider range first (up to ±${info.limits.code})`,
        "input",
      );
    } else {
      clearMessage("input");
      state.codes[control.name] = value;
      slider.value = String(value);
      update(event);
    }
  });
  return [slider, exact];
}

function setCode(name, value) {
  state.codes[name] = value; // exact (Q's value after an upload); the number box shows it rounded
  const input = $(`code-${name}`);
  input.value = String(value);
  const exact = $(`value-${name}`);
  if (exact) exact.value = String(Number(value.toFixed(3)));
}

function setRange(low, high) {
  state.low = low;
  state.high = high;
  $("low").value = String(low);
  $("high").value = String(high);
  for (const control of info.controls) {
    if (control.kind !== "continuous") continue;
    const slider = $(`code-${control.name}`);
    slider.min = String(low);
    slider.max = String(high);
    const value = Math.min(high, Math.max(low, state.codes[control.name]));
    setCode(control.name, value);
  }
}

function buildControls() {
  const box = $("codes");
  for (const control of info.controls) {
    const inputs = control.kind === "categorical" ? buildCategorical(control) : buildContinuous(control);
    state.codes[control.name] = 0;
    box.append(
      element("div", { className: `code ${control.kind}` }, [
        element("label", { className: "title", htmlFor: `code-${control.name}`, textContent: codeTitle(control.name) }),
        ...inputs,
        element("p", { className: "bound", textContent: boundText(control.name) }),
      ]),
    );
    $("sweep-code").append(element("option", { value: control.name, textContent: codeTitle(control.name) }));
  }
  state.sweep = info.controls.length ? info.controls[0].name : null;
  if (!info.controls.length) {
    for (const radio of document.querySelectorAll("input[name=mode]")) radio.disabled = true;
  }
  setRange(info.range[0], info.range[1]);
}

function rangeChanged(event) {
  const low = Number($("low").value);
  const high = Number($("high").value);
  const limit = info.limits.code;
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(low < high) || low < -limit || high > limit) {
    showMessage(`the slider range needs two numbers with -${limit} ≤ from < to ≤ ${limit}`, "input");
    return;
  }
  clearMessage("input");
  setRange(low, high);
  update(event);
}

function seedChanged(event) {
  const seed = Number($("seed").value);
  if (!Number.isInteger(seed) || seed < 0 || seed > info.limits.seed) {
    showMessage(`the seed must be a whole number from 0 to ${info.limits.seed}`, "input");
    return;
  }
  clearMessage("input");
  state.seed = seed;
  update(event);
}

function reroll(event) {
  if ($("lock").checked) return;
  state.seed = Math.floor(Math.random() * info.limits.seed);
  $("seed").value = String(state.seed);
  update(event);
}

function stepsChanged(event) {
  const steps = Number($("steps").value);
  if (!Number.isInteger(steps) || steps < 2 || steps > info.limits.steps) {
    showMessage(`steps must be a whole number from 2 to ${info.limits.steps}`, "input");
    return;
  }
  clearMessage("input");
  state.steps = steps;
  update(event);
}

function lockChanged() {
  const locked = $("lock").checked;
  $("reroll").disabled = locked;
  $("seed").readOnly = locked;
}

// -- encode ---------------------------------------------------------------------------------

async function encodeFile(file) {
  const limit = info.limits.upload_bytes;
  if (file.size > limit) {
    const mb = (n) => (n / 2 ** 20).toFixed(1);
    showMessage(`${file.name} is ${mb(file.size)} MB: the explorer takes images up to ${mb(limit)} MB`, "upload");
    return;
  }
  let response;
  try {
    response = await fetch("/api/encode", {
      method: "POST",
      body: file,
      headers: { "Content-Type": "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
    });
  } catch (error) {
    showMessage(`the upload failed (${error.message}); is the explorer's server still running?`, "upload");
    return;
  }
  if (!response.ok) {
    showMessage(await errorText(response), "upload");
    return;
  }
  clearMessage("upload");
  showEncoded(file.name, await response.json());
}

function showEncoded(filename, result) {
  const first = result.runs.find((run) => run.codes);
  let widened = "";
  const values = info.controls.filter((c) => c.kind === "continuous").map((c) => first.codes[c.name]);
  if (values.some((v) => v < state.low || v > state.high)) {
    const low = Math.min(state.low, Math.floor(Math.min(...values)));
    const high = Math.max(state.high, Math.ceil(Math.max(...values)));
    setRange(low, high);
    widened = ` The slider range was widened to ${low}..${high} to hold them.`;
  }
  for (const control of info.controls) setCode(control.name, first.codes[control.name]);

  const table = element("table", {}, [
    element("tr", {}, [
      element("th", { textContent: "code" }),
      ...info.runs.map((run, i) => element("th", { textContent: info.runs.length > 1 ? LETTERS[i] : "Q says" })),
    ]),
  ]);
  for (const control of info.controls) {
    const cells = result.runs.map((run, i) => {
      if (!run.codes) return element("td", { textContent: "–" });
      const value = run.codes[control.name];
      const text = control.kind === "categorical" ? valueTitle(info.runs[i], control.name, value) : value.toFixed(3);
      return element("td", { textContent: text });
    });
    table.append(element("tr", {}, [element("th", { textContent: codeTitle(control.name) }), ...cells]));
  }
  const figures = [element("figure", {}, [element("img", { id: "upload-preview", src: result.preview, alt: filename }),
    element("figcaption", { textContent: `${filename}, as the model reads it` })])];
  result.runs.forEach((run, i) => {
    if (!run.codes) return;
    const image = element("img", { id: `encoded-${i}`, alt: `generated with the codes Q read` });
    figures.push(element("figure", {}, [image, element("figcaption", {
      textContent: `${info.runs.length > 1 ? LETTERS[i] + ": " : ""}generated with these codes (seed ${state.seed})`,
    })]));
    const query = codeQuery(run.codes);
    query.set("run", String(i));
    fetch(`/api/image?${query}`).then(async (response) => {
      if (response.ok) image.src = URL.createObjectURL(await response.blob());
      else showMessage(await errorText(response), "upload");
    });
  });
  const note = element("p", { textContent: `The controls now hold ${info.runs.length > 1 ? "A's" : "Q's"} codes.${widened}` });
  $("encoded").replaceChildren(element("div", { className: "figures" }, figures), table, note);
  update();
}

function setUpEncode() {
  const drop = $("drop");
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) encodeFile(file);
    $("file").value = "";
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) encodeFile(file);
  });
}

// -- start ----------------------------------------------------------------------------------

function showRuns() {
  const list = $("runs");
  info.runs.forEach((run, i) => {
    const letter = info.runs.length > 1 ? `${LETTERS[i]}: ` : "";
    const text = run.error ? `${letter}${run.name}: not loaded` : `${letter}${run.name} (step ${run.step}, ${run.dataset})`;
    const item = element("li", { textContent: text });
    if (run.note) item.append(element("span", { className: "note", textContent: ` ${run.note}` }));
    list.append(item);
  });
}

async function start() {
  let response;
  try {
    response = await fetch("/api/info");
  } catch (error) {
    showMessage(`the explorer's server cannot be reached (${error.message})`, "start");
    return;
  }
  if (!response.ok) {
    showMessage(await errorText(response), "start");
    return;
  }
  info = await response.json();
  showRuns();
  buildControls();
  views = info.runs.map((run, i) => new View(i, run));
  $("outputs").replaceChildren(...views.map((view) => view.figure));

  $("message-close").addEventListener("click", () => clearMessage());
  $("low").addEventListener("change", rangeChanged);
  $("high").addEventListener("change", rangeChanged);
  $("seed").addEventListener("change", seedChanged);
  $("reroll").addEventListener("click", reroll);
  $("lock").addEventListener("change", lockChanged);
  $("steps").max = String(info.limits.steps);
  $("steps").addEventListener("change", stepsChanged);
  $("sweep-code").addEventListener("change", (event) => {
    state.sweep = $("sweep-code").value;
    if (state.mode === "traverse") update(event);
  });
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", (event) => {
      state.mode = radio.value;
      update(event);
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "r" && !["INPUT", "SELECT"].includes(document.activeElement.tagName)) reroll(event);
  });
  setUpEncode();
  window.explore.ready = true;
  update();
}

start();
