// facelab web page: plain JavaScript over the REST API (no framework, nothing from a CDN).
"use strict";

const $ = (sel) => document.querySelector(sel);
const KEY_STORE = "facelab.apiKey";
let apiKey = localStorage.getItem(KEY_STORE) || "";
let currentPhoto = null; // the Blob last analysed (enrolment sends it again with the face's box)
let webcamStream = null;

// --- API ---------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (apiKey) headers["X-API-Key"] = apiKey;
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = body && body.error ? body.error : { code: "http_" + resp.status, message: resp.statusText };
    const e = new Error(err.message);
    e.code = err.code;
    e.status = resp.status;
    throw e;
  }
  return body;
}

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function errorText(e) {
  return e.code ? `${e.message} (${e.code})` : String(e.message || e);
}

// --- header: readiness and key -------------------------------------------------------------

async function checkServer() {
  const pill = $("#server-status");
  try {
    await api("/v1/ready");
    pill.textContent = "ready";
    pill.className = "pill ok";
  } catch (e) {
    pill.textContent = e.code === "not_ready" ? "loading models…" : "not ready";
    pill.className = "pill bad";
    setTimeout(checkServer, 2000);
  }
}

async function showRole() {
  const role = $("#key-role");
  if (!apiKey) {
    const info = await api("/v1/info").catch(() => null);
    role.textContent = info && !info.auth ? "no key needed" : "enter an API key";
    return;
  }
  try {
    const me = await api("/v1/whoami");
    role.textContent = `role: ${me.role}`;
  } catch (e) {
    role.textContent = e.status === 401 ? "no valid key" : "";
  }
}

$("#key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  apiKey = $("#api-key").value.trim();
  localStorage.setItem(KEY_STORE, apiKey);
  showRole();
  loadGallery();
});

// --- tabs -----------------------------------------------------------------------------------

document.querySelectorAll(".tab").forEach((btn) => {
  btn.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b === btn));
    document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== "tab-" + btn.dataset.tab; });
    if (btn.dataset.tab === "gallery") loadGallery();
  });
});

// --- analyze --------------------------------------------------------------------------------

function chosenActions() {
  return Array.from(document.querySelectorAll("input[name=action]:checked")).map((c) => c.value).join(",");
}

async function analyze(blob) {
  currentPhoto = blob;
  const status = $("#analyze-status");
  setStatus(status, "analysing…");
  const form = new FormData();
  form.append("image", blob, blob.name || "photo.jpg");
  const params = new URLSearchParams({ actions: chosenActions(), annotate: "true" });
  try {
    const res = await api(`/v1/analyze?${params}`, { method: "POST", body: form });
    renderResult(res);
    const n = res.faces.length;
    setStatus(status, n ? `${n} face${n > 1 ? "s" : ""} found (${res.width}×${res.height})` : "no face found");
  } catch (e) {
    setStatus(status, errorText(e), true);
  }
}

function attr(face, key) {
  const a = face.attributes && face.attributes[key];
  if (!a) return "";
  return typeof a.value === "number" ? a.value.toFixed(0) : a.value;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function renderResult(res) {
  const img = $("#annotated");
  img.src = res.annotated_image;
  img.hidden = false;
  const table = $("#faces-table");
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren();
  res.faces.forEach((f, i) => {
    const tr = document.createElement("tr");
    const id = f.identity;
    cell(tr, String(i + 1));
    cell(tr, id ? id.name : "—", id ? (id.name === "unknown" ? "name unknown" : "name") : "");
    cell(tr, id && isFinite(id.distance) ? id.distance.toFixed(3) : "");
    ["age", "gender", "emotion", "ethnicity"].forEach((k) => cell(tr, attr(f, k)));
    const b = f.box;
    tr.title = `box ${b.left.toFixed(0)},${b.top.toFixed(0)} – ${b.right.toFixed(0)},${b.bottom.toFixed(0)}`;
    const td = document.createElement("td");
    const form = document.createElement("form");
    form.className = "enroll";
    const input = document.createElement("input");
    input.type = "text";
    input.placeholder = "name";
    input.setAttribute("aria-label", `name for face ${i + 1}`);
    input.className = "enroll-name";
    if (id && id.name !== "unknown") input.value = id.name;
    const btn = document.createElement("button");
    btn.type = "submit";
    btn.textContent = "Enroll";
    btn.className = "enroll-button";
    form.append(input, btn);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); enroll(input.value, b, btn); });
    td.appendChild(form);
    tr.appendChild(td);
    tbody.appendChild(tr);
  });
  table.hidden = res.faces.length === 0;
  table.parentElement.scrollLeft = 0;
}

async function enroll(name, box, btn) {
  const status = $("#analyze-status");
  name = name.trim();
  if (!name) { setStatus(status, "type a name first", true); return; }
  if (!currentPhoto) return;
  btn.disabled = true;
  const form = new FormData();
  form.append("name", name);
  form.append("image", currentPhoto, currentPhoto.name || "photo.jpg");
  const boxParam = [box.left, box.top, box.right, box.bottom].map((v) => v.toFixed(1)).join(",");
  try {
    const res = await api(`/v1/gallery/people?box=${encodeURIComponent(boxParam)}`, { method: "POST", body: form });
    const r = res.results[0];
    const msg = r.status === "added" ? `enrolled ${res.person.name} (${res.person.count} photo${res.person.count > 1 ? "s" : ""})` : `${res.person.name}: ${r.note || r.status}`;
    await analyze(currentPhoto); // shows the new name on the photo
    setStatus(status, msg);
  } catch (e) {
    setStatus(status, errorText(e), true);
  } finally {
    btn.disabled = false;
  }
}

$("#photo-input").addEventListener("change", (ev) => {
  const f = ev.target.files[0];
  if (f) analyze(f);
});

// --- webcam ---------------------------------------------------------------------------------

$("#webcam-start").addEventListener("click", async () => {
  const status = $("#analyze-status");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus(status, "this browser gives no camera access here (it needs https or localhost)", true);
    return;
  }
  try {
    webcamStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    $("#webcam-video").srcObject = webcamStream;
    $("#webcam").hidden = false;
  } catch (e) {
    setStatus(status, `no camera: ${e.message || e}`, true);
  }
});

function stopWebcam() {
  if (webcamStream) webcamStream.getTracks().forEach((t) => t.stop());
  webcamStream = null;
  $("#webcam").hidden = true;
}

$("#webcam-stop").addEventListener("click", stopWebcam);

$("#webcam-snap").addEventListener("click", () => {
  const video = $("#webcam-video");
  if (!video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => { if (blob) analyze(new File([blob], "webcam.jpg", { type: "image/jpeg" })); }, "image/jpeg", 0.92);
});

// --- gallery --------------------------------------------------------------------------------

async function loadGallery() {
  const status = $("#gallery-status");
  const tbody = $("#people-table tbody");
  try {
    const g = await api("/v1/gallery");
    tbody.replaceChildren();
    g.people.forEach((p) => {
      const tr = document.createElement("tr");
      cell(tr, p.name, "name");
      cell(tr, String(p.count));
      cell(tr, p.created);
      const td = document.createElement("td");
      const rename = document.createElement("button");
      rename.textContent = "Rename";
      rename.className = "secondary";
      rename.addEventListener("click", () => renamePerson(p.name));
      const del = document.createElement("button");
      del.textContent = "Delete";
      del.className = "danger";
      del.addEventListener("click", () => deletePerson(p.name));
      td.append(rename, " ", del);
      tr.appendChild(td);
      tbody.appendChild(tr);
    });
    const i = g.info;
    $("#gallery-info").textContent = `${g.people.length} ${g.people.length === 1 ? "person" : "people"}, ${i.embeddings} photo${i.embeddings === 1 ? "" : "s"} · ${i.store} · model ${i.model || "—"} · threshold ${i.threshold}`;
    setStatus(status, g.people.length ? "" : "nobody enrolled yet: analyse a photo and enroll a face");
  } catch (e) {
    setStatus(status, errorText(e), true);
  }
}

async function renamePerson(name) {
  const status = $("#gallery-status");
  const to = prompt(`New name for ${name}:`, name);
  if (!to || to === name) return;
  try {
    await api(`/v1/gallery/people/${encodeURIComponent(name)}`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: to }) });
    await loadGallery();
    setStatus(status, `renamed ${name} to ${to}`);
  } catch (e) {
    setStatus(status, errorText(e), true);
  }
}

async function deletePerson(name) {
  const status = $("#gallery-status");
  if (!confirm(`Delete ${name} and all their photos from the gallery?`)) return;
  try {
    const r = await api(`/v1/gallery/people/${encodeURIComponent(name)}`, { method: "DELETE" });
    await loadGallery();
    setStatus(status, `deleted ${r.name} (${r.removed_embeddings} photo${r.removed_embeddings === 1 ? "" : "s"})`);
  } catch (e) {
    setStatus(status, errorText(e), true);
  }
}

$("#gallery-refresh").addEventListener("click", loadGallery);

// --- verify ---------------------------------------------------------------------------------

function preview(inputSel, imgSel) {
  $(inputSel).addEventListener("change", (ev) => {
    const f = ev.target.files[0];
    const img = $(imgSel);
    if (img.src) URL.revokeObjectURL(img.src);
    if (f) { img.src = URL.createObjectURL(f); img.hidden = false; } else { img.hidden = true; }
  });
}
preview("#verify-1", "#verify-1-preview");
preview("#verify-2", "#verify-2-preview");

$("#verify-run").addEventListener("click", async () => {
  const out = $("#verify-result");
  const a = $("#verify-1").files[0], b = $("#verify-2").files[0];
  out.className = "status verdict";
  if (!a || !b) { setStatus(out, "choose two photos", true); return; }
  setStatus(out, "comparing…");
  const form = new FormData();
  form.append("image1", a, a.name);
  form.append("image2", b, b.name);
  try {
    const v = await api("/v1/verify", { method: "POST", body: form });
    out.textContent = `${v.same ? "Same person" : "Different people"}: distance ${v.distance.toFixed(3)} ${v.same ? "≤" : ">"} threshold ${v.threshold.toFixed(3)} (${v.model})`;
    out.classList.add(v.same ? "same" : "different");
  } catch (e) {
    setStatus(out, errorText(e), true);
  }
});

// --- start ----------------------------------------------------------------------------------

$("#api-key").value = apiKey;
checkServer();
showRole();
