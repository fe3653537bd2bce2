// maskface web page: plain JavaScript, no build step. Talks to the /v1 API with the key typed in
// the header (kept in localStorage). All text from the server goes in through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("maskface-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("maskface-key", keyInput.value));

function status(msg, ok = false) {
  $("status").textContent = msg;
  $("status").className = ok ? "ok" : "";
}

async function api(method, path, body) {
  const opts = { method, headers: { "X-API-Key": keyInput.value.trim() } };
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, opts);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = (data && data.error) || { message: res.statusText };
    throw new Error(`${res.status}: ${err.message}`);
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// ---- tabs -------------------------------------------------------------------------------
document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === b));
  document.querySelectorAll(".panel").forEach((p) =>
    p.classList.toggle("active", p.id === b.dataset.tab));
  if (b.dataset.tab === "people") loadPeople();
  if (b.dataset.tab === "events") loadEvents();
  if (b.dataset.tab === "policy") loadPolicy();
}));

// ---- drawing ----------------------------------------------------------------------------
const MASK_TEXT = { with_mask: "Mask", without_mask: "No mask", mask_incorrect: "Mask incorrect" };
const MASK_COLOUR = { with_mask: "#16a34a", without_mask: "#dc2626", mask_incorrect: "#f59e0b" };

function drawFaces(canvas, width, height, faces, source) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  if (source) ctx.drawImage(source, 0, 0, width, height);
  const line = Math.max(2, Math.round(Math.max(width, height) / 300));
  ctx.font = `${Math.max(14, Math.round(height / 30))}px sans-serif`;
  for (const f of faces) {
    const [x1, y1, x2, y2] = f.box;
    const label = f.mask ? f.mask.label : null;
    const colour = MASK_COLOUR[label] || "#9ca3af";
    const parts = [];
    if (f.identity) parts.push(f.identity.name || "Unknown");
    parts.push(label ? `${MASK_TEXT[label] || label} ${Math.round(f.mask.probability * 100)}%`
      : "Face");
    if (f.liveness && f.liveness.problem) parts.push("Liveness ?");
    else if (f.liveness) parts.push(`${f.liveness.label === "live" ? "Live" : "SPOOF"} ` +
      `${Math.round(f.liveness.score * 100)}%`);
    ctx.strokeStyle = colour;
    ctx.lineWidth = line;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = parts.join(" | ");
    const tw = ctx.measureText(text).width + 8;
    const th = parseInt(ctx.font, 10) + 6;
    ctx.fillStyle = colour;
    ctx.fillRect(x1, Math.max(0, y1 - th), tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x1 + 4, Math.max(th - 6, y1 - 6));
  }
}

function showDecision(d) {
  const box = $("decision");
  box.hidden = false;
  box.className = `decision ${d.decision}`;
  box.replaceChildren();
  const who = d.person ? d.person.name : "unknown person";
  const mask = d.mask ? `, ${(MASK_TEXT[d.mask] || d.mask).toLowerCase()}` : "";
  const temp = d.temperature != null ? `, ${d.temperature.toFixed(1)} °C` : "";
  box.append(el("strong", d.decision === "granted" ? "GRANTED" : "DENIED", "verdict"),
    el("span", ` — ${who}${mask}${temp}`));
  if (d.reasons.length) {
    const ul = el("ul");
    for (const r of d.reasons) ul.append(el("li", r.message));
    box.append(ul);
  }
  const notes = [];
  if (d.frames > 1) {
    const used = d.evidence ? d.evidence.used.length : 0;
    notes.push(`decided over ${used} of ${d.frames} frames`);
  }
  if (d.liveness) notes.push(`liveness ${Math.round(d.liveness.score * 100)}%`);
  if (d.ignored_faces && d.ignored_faces.length) {
    notes.push(`${d.ignored_faces.length} face(s) in the background ignored`);
  }
  if (notes.length) box.append(el("p", notes.join(" · "), "notes"));
  box.dataset.eventId = d.event_id;
  box.dataset.frames = d.frames || 1;
}

// ---- kiosk ------------------------------------------------------------------------------
const video = $("video");
const overlay = $("overlay");
let stream = null;
let liveTimer = null;
let busy = false;
let lastAutoCheck = 0;

function frameBlob() {
  const c = document.createElement("canvas");
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.85));
}

// The kiosk decides once over a short burst: the server keeps the best frames by quality.
const BURST_FRAMES = 5;
const BURST_GAP_MS = 150;

async function burstBlobs() {
  const blobs = [];
  for (let i = 0; i < BURST_FRAMES; i++) {
    if (i) await new Promise((r) => setTimeout(r, BURST_GAP_MS));
    blobs.push(await frameBlob());
  }
  return blobs;
}

function accessForm(blobs, names) {
  const fd = new FormData();
  if (blobs.length === 1) fd.append("image", blobs[0], names[0]);
  else blobs.forEach((b, i) => fd.append("images", b, names[i]));
  const t = $("temperature").value;
  if (t) fd.append("temperature", t);
  return fd;
}

async function liveTick() {
  if (busy || !stream || !video.videoWidth) return;
  busy = true;
  try {
    const fd = new FormData();
    fd.append("image", await frameBlob(), "frame.jpg");
    const r = await api("POST", "/v1/analyze", fd);
    drawFaces(overlay, video.videoWidth, video.videoHeight, r.faces, null);
    // someone in view (the server judges the person at the door, not the passers-by)
    const someone = r.faces.length > 0;
    if ($("auto-check").checked && someone && Date.now() - lastAutoCheck > 4000) {
      lastAutoCheck = Date.now();
      await checkCamera();
    }
  } catch (e) {
    status(e.message);
  } finally {
    busy = false;
  }
}

async function checkCamera() {
  try {
    const blobs = await burstBlobs();
    const d = await api("POST", "/v1/access/check",
      accessForm(blobs, blobs.map((_, i) => `frame-${i}.jpg`)));
    showDecision(d);
    drawFaces(overlay, video.videoWidth, video.videoHeight, d.faces, null);
  } catch (e) {
    status(e.message);
  }
}

$("cam-start").addEventListener("click", async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (e) {
    status(`camera unavailable: ${e.message}`);
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  overlay.style.position = "";
  $("cam-start").disabled = true;
  $("cam-stop").disabled = false;
  $("check-camera").disabled = false;
  liveTimer = setInterval(liveTick, 700);
});

$("cam-stop").addEventListener("click", () => {
  clearInterval(liveTimer);
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("cam-start").disabled = false;
  $("cam-stop").disabled = true;
  $("check-camera").disabled = true;
});

$("check-camera").addEventListener("click", checkCamera);

$("check-file").addEventListener("change", async (ev) => {
  const files = Array.from(ev.target.files);
  const file = files[0];
  if (!file) return;
  try {
    // several photos: one burst decision over them
    const d = await api("POST", "/v1/access/check", accessForm(files, files.map((f) => f.name)));
    showDecision(d);
    // the faces returned are those of the frame the decision rests on
    const best = d.evidence && d.evidence.used.length ? files[d.evidence.used[0]] : file;
    const img = await createImageBitmap(best, { imageOrientation: "from-image" });
    video.hidden = true;
    drawFaces(overlay, img.width, img.height, d.faces, img);
    overlay.style.position = "static";
    status("");
  } catch (e) {
    status(e.message);
  }
});

// ---- enrolment --------------------------------------------------------------------------
const shots = [];
let enrolStream = null;
$("enrol-cam").addEventListener("click", async () => {
  const v = $("enrol-video");
  if (!enrolStream) {
    try {
      enrolStream = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (e) {
      status(`camera unavailable: ${e.message}`);
      return;
    }
    v.srcObject = enrolStream;
    v.hidden = false;
    $("enrol-cam").textContent = "Capture";
    return;
  }
  const c = document.createElement("canvas");
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  shots.push(await new Promise((r) => c.toBlob(r, "image/jpeg", 0.9)));
  $("enrol-shots").textContent = `${shots.length} camera photos`;
});

$("enrol-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const fd = new FormData();
  fd.append("name", $("enrol-name").value);
  fd.append("groups", $("enrol-groups").value);
  // An already enrolled face is refused (409 already_enrolled, shown in the status line)
  // unless the admin ticks the override.
  if ($("enrol-allow-duplicate").checked) fd.append("allow_duplicate", "true");
  if ($("enrol-allow-small").checked) fd.append("allow_small_face", "true");
  for (const f of $("enrol-photos").files) fd.append("photos", f, f.name);
  shots.forEach((b, i) => fd.append("photos", b, `camera-${i + 1}.jpg`));
  try {
    const p = await api("POST", "/v1/people", fd);
    $("enrol-result").textContent =
      `Enrolled ${p.name} (id ${p.id}) from ${p.photos} photos (${p.masked_photos} masked).`;
    status("enrolled", true);
    shots.length = 0;
    $("enrol-shots").textContent = "0 camera photos";
    ev.target.reset();
  } catch (e) {
    $("enrol-result").textContent = "";
    status(e.message);
  }
});

// ---- people -----------------------------------------------------------------------------
async function loadPeople() {
  try {
    const q = new URLSearchParams({ limit: "500" });
    if ($("people-q").value.trim()) q.set("q", $("people-q").value.trim());
    const r = await api("GET", `/v1/people?${q}`);
    $("people-count").textContent = r.total > r.count
      ? `first ${r.count} of ${r.total}: narrow the search`
      : `${r.total} ${r.total === 1 ? "person" : "people"}`;
    const body = $("people-body");
    body.replaceChildren();
    for (const p of r.people) {
      const tr = el("tr");
      tr.append(el("td", p.id), el("td", p.name), el("td", p.groups.join(", ")),
        el("td", `${p.photos} (${p.masked_photos} masked)`));
      const td = el("td");
      const ren = el("button", "Rename");
      ren.addEventListener("click", async () => {
        const name = prompt("New name", p.name);
        if (!name) return;
        try { await api("PATCH", `/v1/people/${p.id}`, { name }); loadPeople(); }
        catch (e) { status(e.message); }
      });
      const del = el("button", "Delete");
      del.addEventListener("click", async () => {
        if (!confirm(`Delete ${p.name} and every photo embedding?`)) return;
        try { await api("DELETE", `/v1/people/${p.id}`); loadPeople(); }
        catch (e) { status(e.message); }
      });
      td.append(ren, del);
      tr.append(td);
      body.append(tr);
    }
    status("");
  } catch (e) {
    status(e.message);
  }
}
$("people-refresh").addEventListener("click", loadPeople);
$("people-q").addEventListener("change", loadPeople);

// ---- events -----------------------------------------------------------------------------
function eventFilters() {
  const q = new URLSearchParams();
  const since = $("ev-since").value;
  const until = $("ev-until").value;
  // datetime-local is the browser's local time: send it with its UTC offset.
  if (since) q.set("since", new Date(since).toISOString());
  if (until) q.set("until", new Date(until).toISOString());
  if ($("ev-person").value) q.set("person_id", $("ev-person").value);
  if ($("ev-decision").value) q.set("decision", $("ev-decision").value);
  if ($("ev-door").value.trim()) q.set("door", $("ev-door").value.trim());
  return q;
}

async function loadEvents() {
  const q = eventFilters();
  q.set("limit", "100");
  try {
    const r = await api("GET", `/v1/events?${q}`);
    const body = $("events-body");
    body.replaceChildren();
    for (const e of r.events) {
      const tr = el("tr");
      tr.dataset.eventId = e.id;
      tr.append(el("td", e.id), el("td", e.time_iso), el("td", e.door || "—"),
        el("td", e.person_name || "—"),
        el("td", e.decision, e.decision), el("td", e.reasons.join(", ")),
        el("td", e.mask || "—"), el("td", e.temperature != null ? e.temperature.toFixed(1) : "—"));
      body.append(tr);
    }
    status("");
  } catch (e) {
    status(e.message);
  }
}
$("events-refresh").addEventListener("click", loadEvents);

// Every matching event, not only the 100 shown; fetched with the key (a plain link cannot send
// it), then handed to the browser as a file.
$("events-csv").addEventListener("click", async () => {
  try {
    const res = await fetch(`/v1/events/export.csv?${eventFilters()}`,
      { headers: { "X-API-Key": keyInput.value.trim() } });
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      throw new Error(`${res.status}: ${((data && data.error) || { message: res.statusText }).message}`);
    }
    const url = URL.createObjectURL(await res.blob());
    const a = el("a");
    a.href = url;
    a.download = "access-events.csv";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    status("");
  } catch (e) {
    status(e.message);
  }
});

// ---- policy -----------------------------------------------------------------------------
// The building's rules, or one door's own (a door is its kiosk key's label). Every field of
// the policy is on the form: saving replaces the whole policy, as PUT /v1/policy does.
const POLICY_FLAGS = ["mask_required", "liveness_required", "quality_required",
  "single_person_strict", "require_temperature"];
const POLICY_NUMBERS = ["temperature_threshold", "min_face_size"];
const POLICY_OPTIONAL = ["match_threshold", "liveness_threshold"];

function policyDoor() {
  return $("pol-new-door").value.trim() || $("pol-door").value;
}

function policyPath() {
  const door = policyDoor();
  return door ? `/v1/policy?door=${encodeURIComponent(door)}` : "/v1/policy";
}

const POLICY_SOURCE = { door: "this door's own rules", api: "the building's rules (set here)",
  config: "the building's rules (the config file's)" };

function showPolicy(r) {
  const p = r.policy;
  for (const k of POLICY_FLAGS) $(`pol-${k}`).checked = p[k];
  for (const k of POLICY_NUMBERS) $(`pol-${k}`).value = p[k];
  for (const k of POLICY_OPTIONAL) $(`pol-${k}`).value = p[k] == null ? "" : p[k];
  $("pol-allowed_groups").value = p.allowed_groups.join(", ");
  $("pol-source").textContent = `in force: ${POLICY_SOURCE[r.source] || r.source}`;
  $("pol-reset").textContent = r.door ? "Back to the building's rules" : "Back to the config file's";
  if (r.doors) {  // the building's answer lists the doors with rules of their own
    const sel = $("pol-door");
    const keep = sel.value;
    sel.replaceChildren(el("option", "the building (every door)"));
    sel.firstChild.value = "";
    for (const d of Object.keys(r.doors)) {
      const o = el("option", `door ${d} (own rules)`);
      o.value = d;
      sel.append(o);
    }
    sel.value = keep;
  }
}

async function loadPolicy() {
  try {
    if (policyDoor()) showPolicy(await api("GET", "/v1/policy"));  // refresh the door list
    showPolicy(await api("GET", policyPath()));
    status("");
  } catch (e) {
    status(e.message);
  }
}
$("pol-load").addEventListener("click", loadPolicy);
$("pol-door").addEventListener("change", () => { $("pol-new-door").value = ""; loadPolicy(); });

$("policy-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {};
  for (const k of POLICY_FLAGS) body[k] = $(`pol-${k}`).checked;
  for (const k of POLICY_NUMBERS) body[k] = Number($(`pol-${k}`).value);
  for (const k of POLICY_OPTIONAL) {
    const v = $(`pol-${k}`).value.trim();
    body[k] = v === "" ? null : Number(v);
  }
  body.allowed_groups = $("pol-allowed_groups").value.split(",").map((g) => g.trim())
    .filter((g) => g);
  try {
    const door = policyDoor();
    const r = await api("PUT", policyPath(), body);
    showPolicy(await api("GET", "/v1/policy"));  // the door list, then what was saved
    $("pol-new-door").value = "";
    $("pol-door").value = door;
    showPolicy(r);
    status(door ? `Saved door ${door}'s rules.` : "Saved the building's rules.", true);
  } catch (e) {
    status(e.message);
  }
});

$("pol-reset").addEventListener("click", async () => {
  try {
    const door = policyDoor();
    await api("DELETE", policyPath());
    $("pol-new-door").value = "";
    showPolicy(await api("GET", "/v1/policy"));
    $("pol-door").value = "";
    status(door ? `Door ${door} follows the building's rules again.` :
      "The building follows the config file's rules again.", true);
  } catch (e) {
    status(e.message);
  }
});
