// TagAtlas posting page: live suggestions (debounced), a map of the predicted place, search.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { photo: null, timer: null, seq: 0 };

const map = L.map("map", { worldCopyJump: true, attributionControl: true }).setView([20, 0], 2);
fetch("/static/vendor/countries-110m.json").then((r) => r.json()).then((world) => {
  const land = topojson.feature(world, world.objects.countries);
  L.geoJSON(land, { style: { color: "#7a8ba0", weight: 0.6, fillColor: "#f4f1e8", fillOpacity: 1 } }).addTo(map)
    .getAttribution = () => "Natural Earth";
});
const marker = L.marker([0, 0]);
const circle = L.circle([0, 0], { radius: 1, color: "#2b5ea7" });

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("apikey").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

function captionTags() {
  return new Set(Array.from($("caption").value.matchAll(/#(\w+)/gu), (m) => m[1].toLowerCase()));
}

function renderTags(pred) {
  const present = captionTags();
  const list = $("tags");
  list.replaceChildren();
  for (const t of pred.hashtag_candidates.slice(0, 8)) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "#" + t.tag;
    b.dataset.tag = t.tag;
    b.title = Object.entries(t.sources).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ");
    if (present.has(t.tag)) b.classList.add("added");
    b.setAttribute("aria-pressed", present.has(t.tag) ? "true" : "false");
    b.addEventListener("click", () => addTag(t.tag));
    li.appendChild(b);
    list.appendChild(li);
  }
}

function renderPlace(pred) {
  const top = pred.places[0];
  $("place").textContent = top ? `${top.name} (p=${top.prob.toFixed(2)}), ±${Math.round(pred.radius_km)} km` : "";
  marker.setLatLng([pred.lat, pred.lon]).addTo(map);
  circle.setLatLng([pred.lat, pred.lon]).setRadius(pred.radius_km * 1000).addTo(map);
  map.fitBounds(circle.getBounds(), { maxZoom: 9 });
}

function addTag(tag) {
  if (captionTags().has(tag)) return;
  const box = $("caption");
  box.value = (box.value.trimEnd() + " #" + tag).trimStart();
  suggestSoon(0);
}

async function suggest() {
  const text = $("caption").value;
  if (!text.trim() && !state.photo) { $("tags").replaceChildren(); $("place").textContent = ""; return; }
  const body = { text: text || null, image_base64: state.photo };
  const user = $("user").value.trim();
  if (user && $("apikey").value.trim()) body.user_id = user;
  const seq = ++state.seq;
  const r = await fetch("/v1/suggest", { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (seq !== state.seq) return; // a newer request is on its way
  if (!r.ok) { $("status").textContent = `Suggestion failed: ${(await r.json()).detail ?? r.status}`; return; }
  $("status").textContent = "";
  const pred = await r.json();
  renderTags(pred);
  renderPlace(pred);
}

function suggestSoon(delay = 300) {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => suggest().catch((e) => { $("status").textContent = "Suggestion failed: " + e; }), delay);
}

$("caption").addEventListener("input", () => suggestSoon());
$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  if (!file) { state.photo = null; suggestSoon(0); return; }
  const reader = new FileReader();
  reader.onload = () => { state.photo = reader.result.split(",")[1]; suggestSoon(0); };
  reader.readAsDataURL(file);
});

$("post").addEventListener("click", async () => {
  const text = $("caption").value;
  const body = { id: crypto.randomUUID(), user_id: $("user").value.trim() || null, text, hashtags: Array.from(captionTags()) };
  const r = await fetch("/v1/posts", { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const answer = await r.json();
  $("status").textContent = r.ok ? `Posted (${answer.post.id}).` : `Not posted: ${answer.detail}`;
});

$("search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const params = new URLSearchParams({ q: $("query").value, k: "10" });
  const user = $("user").value.trim();
  if (user && $("apikey").value.trim()) params.set("user", user);
  const r = await fetch("/v1/search?" + params, { headers: headers() });
  const list = $("results");
  list.replaceChildren();
  if (!r.ok) { $("status").textContent = `Search failed: ${(await r.json()).detail}`; return; }
  for (const hit of (await r.json()).hits) {
    const li = document.createElement("li");
    li.textContent = hit.text ?? "(no text)";
    const why = document.createElement("div");
    why.className = "why";
    const reasons = Object.entries(hit.reasons).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : v}`).join(" · ");
    why.textContent = `${hit.place_name ?? ""} ${hit.hashtags.map((t) => "#" + t).join(" ")} — ${reasons}`;
    li.appendChild(why);
    list.appendChild(li);
  }
});
