// chromaflow studio: the page. Plain JavaScript, no build step; every request goes to this studio's own API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  source: null,          // {key, name, width, height, frames, preview_width, preview_height, cuts}
  n: 0,                  // current frame
  frameHints: {},        // {frame: [{x, y, color, radius}]}
  shotHints: [],         // [{start, end, hints: [...]}]
  keyframes: {},         // {frame: image path relative to the project}
  gray: null, colour: null, // Image objects of the current frame
  selected: null,        // {scope, index} of the selected hint
  drag: null,
  previewSeq: 0,
  boxes: [],             // deepfake face boxes of the current frame
  scan: null,
};

// ---------------------------------------------------------------- messages and requests

function say(text, ok = false) {
  const box = $("message");
  box.textContent = text;
  box.className = ok ? "ok" : "";
  box.hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    let text = `${response.status} ${response.statusText}`;
    if (type.includes("json")) text = (await response.json()).error || text;
    throw new Error(text);
  }
  if (type.includes("json")) return response.json();
  return response.blob();
}

const post = (path, body) =>
  api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

function guarded(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (err) { say(err.message || String(err)); }
  };
}

function loadImage(blob) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the studio sent an image the browser cannot show"));
    img.src = URL.createObjectURL(blob);
  });
}

// ---------------------------------------------------------------- hints of a frame

function shotOf(n) {
  const bounds = [0, ...state.source.cuts, state.source.frames];
  for (let i = 0; i + 1 < bounds.length; i++) if (bounds[i] <= n && n < bounds[i + 1]) return [bounds[i], bounds[i + 1]];
  return [0, state.source.frames];
}

function shotEntry(create) {
  const [start, end] = shotOf(state.n);
  let entry = state.shotHints.find((s) => s.start === start && s.end === end);
  if (!entry && create) { entry = { start, end, hints: [] }; state.shotHints.push(entry); }
  return entry;
}

function hintsOf(scope) {
  if (scope === "shot") { const e = shotEntry(false); return e ? e.hints : []; }
  return state.frameHints[state.n] || [];
}

function effectiveHints() { return [...hintsOf("shot"), ...hintsOf("frame")]; }

function listFor(scope) {
  if (scope === "shot") return shotEntry(true).hints;
  if (!state.frameHints[state.n]) state.frameHints[state.n] = [];
  return state.frameHints[state.n];
}

// ---------------------------------------------------------------- drawing

function scale() { return state.source.width / state.source.preview_width; }

function draw() {
  const canvas = $("frame");
  const ctx = canvas.getContext("2d");
  if (!state.gray) return;
  const view = $("view").value;
  const w = canvas.width, h = canvas.height;
  const colour = state.colour || state.gray;
  if (view === "gray") ctx.drawImage(state.gray, 0, 0, w, h);
  else if (view === "colour") ctx.drawImage(colour, 0, 0, w, h);
  else {  // a keyframe's reference is full size: its right half drawn into the canvas's right half
    ctx.drawImage(state.gray, 0, 0, w, h);
    ctx.drawImage(colour, colour.width / 2, 0, colour.width / 2, colour.height, w / 2, 0, w / 2, h);
    ctx.strokeStyle = "#fff"; ctx.beginPath(); ctx.moveTo(w / 2, 0); ctx.lineTo(w / 2, h); ctx.stroke();
  }
  const s = scale();
  for (const scope of ["shot", "frame"]) {
    hintsOf(scope).forEach((hint, index) => {
      const sel = state.selected && state.selected.scope === scope && state.selected.index === index;
      ctx.beginPath();
      ctx.arc(hint.x / s, hint.y / s, Math.max(3, hint.radius / s), 0, 2 * Math.PI);
      ctx.lineWidth = sel ? 3 : 1.5;
      ctx.strokeStyle = sel ? "#ffd400" : (scope === "shot" ? "#0ff" : "#fff");
      ctx.stroke();
    });
  }
  ctx.strokeStyle = "#f33"; ctx.lineWidth = 2;
  for (const b of state.boxes) ctx.strokeRect(b[0] / s, b[1] / s, (b[2] - b[0]) / s, (b[3] - b[1]) / s);
  listHints();
}

function listHints() {
  const ul = $("hints");
  ul.replaceChildren();
  for (const scope of ["shot", "frame"]) {
    hintsOf(scope).forEach((hint, index) => {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = hint.color;
      const label = document.createElement("span");
      label.textContent = `${scope} (${Math.round(hint.x)}, ${Math.round(hint.y)}) ${hint.color}`;
      const del = document.createElement("button");
      del.textContent = "×"; del.title = "delete";
      del.onclick = () => { hintsOf(scope).splice(index, 1); state.selected = null; edited(); };
      li.append(sw, label, del);
      ul.append(li);
    });
  }
}

function zoom() {
  const canvas = $("frame"), z = Number($("zoom").value);
  canvas.style.width = `${Math.round(canvas.width * z)}px`;
  canvas.style.height = `${Math.round(canvas.height * z)}px`;
}

// ---------------------------------------------------------------- frames and preview

async function showFrame(n) {
  if (!state.source) return;
  n = Math.max(0, Math.min(state.source.frames - 1, n));
  state.n = n; state.boxes = boxesOf(n);
  $("frame-no").textContent = n; $("scrub").value = n;
  document.querySelectorAll("#timeline img").forEach((img) => img.classList.toggle("current", +img.dataset.n === n));
  state.gray = await loadImage(await api(`/api/frame?key=${encodeURIComponent(state.source.key)}&n=${n}`));
  state.colour = null;
  draw();
  await refreshPreview();
}

async function refreshPreview() {
  const seq = ++state.previewSeq;
  const canvas = $("frame");
  canvas.dataset.state = "busy"; $("busy").hidden = false;
  try {
    const key = state.keyframes[state.n];
    const blob = key !== undefined && !effectiveHints().length
      ? await api(`/api/keyframe/image?project=${encodeURIComponent(projectName())}&image=${encodeURIComponent(key)}`)
      : await post("/api/preview", {
        key: state.source.key, n: state.n, hints: effectiveHints(), model: $("model").value, size: $("size").value || null,
      });  // a keyframe shows its reference: what the render gives that frame
    const img = await loadImage(blob);
    if (seq !== state.previewSeq) return;   // a newer edit is on its way
    state.colour = img;
    draw();
    canvas.dataset.previews = String(+canvas.dataset.previews + 1);
    say("");
  } finally {
    if (seq === state.previewSeq) { canvas.dataset.state = "ready"; $("busy").hidden = true; }
  }
}

const edited = guarded(async () => { draw(); await refreshPreview(); });

function timeline() {
  const strip = $("timeline");
  strip.replaceChildren();
  const count = Math.min(state.source.frames, 60);
  const step = state.source.frames / count;
  const cuts = new Set(state.source.cuts);
  for (let i = 0; i < count; i++) {
    const n = Math.floor(i * step);
    const img = document.createElement("img");
    img.loading = "lazy"; img.dataset.n = n; img.title = `frame ${n}`;
    img.src = `/api/frame?key=${encodeURIComponent(state.source.key)}&n=${n}&thumb=1`;
    if (cuts.has(n) || [...cuts].some((c) => c > n - step && c <= n)) img.classList.add("cut");
    if (state.keyframes[n] !== undefined) img.classList.add("key");
    img.onclick = guarded(() => showFrame(n));
    strip.append(img);
  }
}

const openSource = guarded(async (key) => {
  const info = await api(`/api/source?key=${encodeURIComponent(key)}`);
  state.source = info;
  const canvas = $("frame");
  canvas.width = info.preview_width; canvas.height = info.preview_height;
  $("zoom").value = Math.min(3, Math.max(0.5, ($("stage").clientWidth - 4) / info.preview_width));  // fit
  zoom();
  $("frame-count").textContent = info.frames - 1;
  $("scrub").max = info.frames - 1;
  if (!$("project-name").value) $("project-name").value = info.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]/g, "_");
  timeline();
  listKeys();
  await showFrame(0);
});

// ---------------------------------------------------------------- hint editing with the mouse

function framePoint(event) {
  const canvas = $("frame");
  const rect = canvas.getBoundingClientRect();
  const px = (event.clientX - rect.left) * canvas.width / rect.width;
  const py = (event.clientY - rect.top) * canvas.height / rect.height;
  const s = scale();
  return [Math.min(state.source.width - 1, Math.max(0, px * s)), Math.min(state.source.height - 1, Math.max(0, py * s))];
}

function hitHint(x, y) {
  const reach = 8 * scale();
  for (const scope of ["frame", "shot"]) {
    const list = hintsOf(scope);
    for (let i = list.length - 1; i >= 0; i--) if (Math.hypot(list[i].x - x, list[i].y - y) <= Math.max(reach, list[i].radius)) return { scope, index: i };
  }
  return null;
}

function onDown(event) {
  if (!state.source) return;
  const [x, y] = framePoint(event);
  const hit = hitHint(x, y);
  if (hit) { state.selected = hit; state.drag = { ...hit, moved: false }; draw(); return; }
  const scope = $("scope").value;
  const list = listFor(scope);
  list.push({ x, y, color: $("colour").value, radius: Number($("radius").value) || 0 });
  state.selected = { scope, index: list.length - 1 };
  edited();
}

function onMove(event) {
  if (!state.drag) return;
  const [x, y] = framePoint(event);
  const hint = hintsOf(state.drag.scope)[state.drag.index];
  hint.x = x; hint.y = y; state.drag.moved = true;
  draw();
}

function onUp() {
  if (state.drag && state.drag.moved) edited();
  state.drag = null;
}

function onKey(event) {
  if (!state.source || ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
  if (event.key === "ArrowRight") { guarded(showFrame)(state.n + 1); event.preventDefault(); }
  else if (event.key === "ArrowLeft") { guarded(showFrame)(state.n - 1); event.preventDefault(); }
  else if ((event.key === "Delete" || event.key === "Backspace") && state.selected) {
    hintsOf(state.selected.scope).splice(state.selected.index, 1);
    state.selected = null; edited();
  }
}

// ---------------------------------------------------------------- sampling colours from a reference image

const loadSample = guarded(async () => {
  const file = $("sample-file").files[0];
  if (!file) return;
  const img = await loadImage(file);
  const canvas = $("sample");
  canvas.height = Math.round(img.height * canvas.width / img.width);
  canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
});

function pickSample(event) {
  const canvas = $("sample");
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor((event.clientX - rect.left) * canvas.width / rect.width);
  const y = Math.floor((event.clientY - rect.top) * canvas.height / rect.height);
  const [r, g, b] = canvas.getContext("2d").getImageData(x, y, 1, 1).data;
  const hex = "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
  $("colour").value = hex;
  if (state.selected) { hintsOf(state.selected.scope)[state.selected.index].color = hex; edited(); }
}

// ---------------------------------------------------------------- keyframes

function listKeys() {
  const ul = $("keys");
  ul.replaceChildren();
  for (const n of Object.keys(state.keyframes).map(Number).sort((a, b) => a - b)) {
    const li = document.createElement("li");
    const go = document.createElement("button");
    go.textContent = `frame ${n}`; go.onclick = guarded(() => showFrame(n));
    const img = document.createElement("img");
    img.height = 32;
    img.src = `/api/keyframe/image?project=${encodeURIComponent(projectName())}&image=${encodeURIComponent(state.keyframes[n])}&t=${Date.now()}`;
    const del = document.createElement("button");
    del.textContent = "×"; del.onclick = () => { delete state.keyframes[n]; listKeys(); timeline(); };
    li.append(go, img, del);
    ul.append(li);
  }
}

async function keyframeStored(result) {
  state.keyframes[result.frame] = result.image;
  delete state.frameHints[result.frame];   // baked into the reference
  listKeys(); timeline();
  const strip = await post("/api/strip", {
    key: state.source.key, project: projectName(), n: result.frame, image: result.image,
    model: $("model").value, transfer: $("transfer").value,
  });
  const box = $("strip");
  box.replaceChildren();
  strip.images.forEach((src, i) => {
    const img = document.createElement("img");
    img.src = src; img.title = `frame ${strip.start + i}`;
    box.append(img);
  });
  say(`frame ${result.frame} is a keyframe; the strip shows its colour carried through the shot`, true);
  await showFrame(state.n);
}

const bake = guarded(async () => {
  const result = await post("/api/keyframe/bake", {
    key: state.source.key, project: projectName(), n: state.n, hints: effectiveHints(),
    model: $("model").value, size: $("size").value || null,
  });
  await keyframeStored(result);
});

const uploadKey = guarded(async () => {
  const file = $("upload-key").files[0];
  if (!file) return;
  const q = `key=${encodeURIComponent(state.source.key)}&project=${encodeURIComponent(projectName())}&n=${state.n}`;
  await keyframeStored(await api(`/api/keyframe/upload?${q}`, { method: "POST", body: file }));
});

// ---------------------------------------------------------------- project

function projectName() { return $("project-name").value.trim(); }

function projectDoc() {
  const frameHints = {};
  for (const [n, hints] of Object.entries(state.frameHints)) if (hints.length) frameHints[n] = hints;
  return {
    chromaflow_project: 1,
    source_key: state.source ? state.source.key : null,
    model: $("model").value,
    size: $("size").value ? Number($("size").value) : null,
    transfer: $("transfer").value,
    smooth: Number($("smooth").value) || 0,
    frame_hints: frameHints,
    shot_hints: state.shotHints.filter((s) => s.hints.length),
    keyframes: state.keyframes,
  };
}

async function saveProject() {
  if (!state.source) throw new Error("open a source first");
  const saved = await post("/api/project", { name: projectName(), project: projectDoc() });
  await refreshProjects();
  say(`project ${saved.name} saved`, true);
  return saved;
}

const loadProject = guarded(async () => {
  const name = $("projects").value;
  if (!name) return;
  const { project } = await api(`/api/project?name=${encodeURIComponent(name)}`);
  $("project-name").value = name;
  $("model").value = project.model; $("size").value = project.size || "";
  $("transfer").value = project.transfer; $("smooth").value = project.smooth;
  state.frameHints = project.frame_hints; state.shotHints = project.shot_hints;
  state.keyframes = project.keyframes;
  if (!project.source_key) throw new Error("the project's source is not among the files this studio serves");
  $("sources").value = project.source_key;
  await openSource(project.source_key);
});

async function refreshProjects() {
  const info = await api("/api/info");
  fillSelect($("projects"), info.projects);
  return info;
}

// ---------------------------------------------------------------- jobs: render and deepfake scan

function follow(job, onState) {
  return new Promise((resolve) => {
    const events = new EventSource(`/api/jobs/${job.id}/events`);
    events.onmessage = (event) => {
      const data = JSON.parse(event.data);
      onState(data);
      if (data.state !== "running") { events.close(); resolve(data); }
    };
    events.onerror = () => { events.close(); resolve(null); };
  });
}

const render = guarded(async () => {
  await saveProject();
  const job = await post("/api/render", { project: projectName(), format: $("render-format").value });
  $("cancel").disabled = false; $("download").hidden = true;
  $("cancel").onclick = guarded(() => post(`/api/jobs/${job.id}/cancel`, {}));
  const end = await follow(job, (s) => {
    $("progress").max = s.total || Math.max(1, s.frames);
    $("progress").value = s.frames;
    $("render-state").textContent = `${s.state}: ${s.frames}${s.total ? " / " + s.total : ""} frames ${s.message || ""}`;
    $("render-state").dataset.state = s.state;
  });
  $("cancel").disabled = true;
  if (end && end.state === "done") {
    const link = $("download");
    link.href = `/api/jobs/${job.id}/download?what=video`; link.hidden = false;
    link.dataset.job = job.id;
    say("render finished", true);
  } else if (end) {
    say(end.message || `render ${end.state}`, end.state === "cancelled");
  }
});

function boxesOf(n) {
  if (!state.scan) return [];
  return (state.scan.faces[n] || []).map((f) => f.box);
}

function plotScores() {
  const canvas = $("scores");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.scan || !state.source) return;
  const frames = Math.max(1, state.source.frames - 1);
  ctx.strokeStyle = "#555"; ctx.beginPath();
  ctx.moveTo(0, canvas.height / 2); ctx.lineTo(canvas.width, canvas.height / 2); ctx.stroke();
  ctx.fillStyle = "#999"; ctx.font = "10px sans-serif";
  ctx.fillText("1 fake", 2, 10); ctx.fillText("0.5", 2, canvas.height / 2 - 2); ctx.fillText("0 real", 2, canvas.height - 2);
  const palette = ["#f55", "#5cf", "#fc5", "#5f8", "#c7f"];
  Object.values(state.scan.tracks).forEach((points, i) => {
    ctx.strokeStyle = palette[i % palette.length]; ctx.beginPath();
    points.forEach(([n, score], j) => {
      const x = n / frames * canvas.width, y = (1 - score) * canvas.height;
      if (j) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  });
}

const scan = guarded(async () => {
  if (!state.source) throw new Error("open a source first");
  const job = await post("/api/deepfake", { key: state.source.key });
  const end = await follow(job, (s) => { $("scan-state").textContent = `${s.state} ${s.frames} frames ${s.message || ""}`; });
  if (!end || end.state !== "done") { if (end) say(end.message || `scan ${end.state}`); return; }
  state.scan = await api(`/api/jobs/${job.id}/scores`);
  const score = state.scan.video.score;
  $("scan-state").textContent = `video score ${score === null || score === undefined ? "n/a" : score.toFixed(3)}`;
  for (const [id, what] of [["export-jsonl", "jsonl"], ["export-vtt", "vtt"]]) {
    $(id).href = `/api/jobs/${job.id}/download?what=${what}`; $(id).hidden = false;
  }
  plotScores();
});

function jumpToScore(event) {
  if (!state.scan || !state.source) return;
  const canvas = $("scores");
  const rect = canvas.getBoundingClientRect();
  const n = Math.round((event.clientX - rect.left) / rect.width * (state.source.frames - 1));
  guarded(showFrame)(n);
}

// ---------------------------------------------------------------- start

function fillSelect(select, values, labels) {
  const keep = select.value;
  select.replaceChildren(...values.map((v, i) => { const o = document.createElement("option"); o.value = v; o.textContent = labels ? labels[i] : v; return o; }));
  if (values.includes(keep)) select.value = keep;
}

const upload = guarded(async () => {
  const file = $("upload").files[0];
  if (!file) return;
  const result = await api(`/api/upload?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
  const info = await refreshProjects();
  fillSelect($("sources"), info.sources.map((s) => s.key), info.sources.map((s) => s.name));
  $("sources").value = result.key;
  await openSource(result.key);
});

const start = guarded(async () => {
  const info = await refreshProjects();
  fillSelect($("model"), info.models);
  fillSelect($("transfer"), info.transfer_modes);
  fillSelect($("sources"), info.sources.map((s) => s.key), info.sources.map((s) => s.name));
  if (!info.sources.length) say("no sources: start the studio with video or image PATHS, or upload one", true);
});

window.addEventListener("error", (e) => say(`page error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => say(String(e.reason && e.reason.message || e.reason)));
$("open").onclick = () => {  // a new source starts a new project
  state.frameHints = {}; state.shotHints = []; state.keyframes = {}; state.scan = null; state.selected = null;
  $("strip").replaceChildren(); $("project-name").value = ""; plotScores();
  return openSource($("sources").value);
};
$("upload").onchange = upload;
$("frame").addEventListener("mousedown", onDown);
window.addEventListener("mousemove", onMove);
window.addEventListener("mouseup", onUp);
window.addEventListener("keydown", onKey);
$("scrub").oninput = () => guarded(showFrame)(Number($("scrub").value));
$("view").onchange = draw;
$("zoom").oninput = zoom;
$("model").onchange = edited; $("size").onchange = edited;
$("sample-file").onchange = loadSample;
$("sample").addEventListener("click", pickSample);
$("bake").onclick = bake;
$("upload-key").onchange = uploadKey;
$("save").onclick = guarded(saveProject);
$("load").onclick = loadProject;
$("render").onclick = render;
$("scan").onclick = scan;
$("scores").addEventListener("click", jumpToScore);
start();
