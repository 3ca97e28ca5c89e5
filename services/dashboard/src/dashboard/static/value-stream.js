// Tandem value stream map: the figures from /api/v1/value-stream, the map itself drawn by
// the server (/api/v1/value-stream.svg) and put on the page as parsed SVG (no scripts in it).
(() => {
  "use strict";

  const params = new URLSearchParams(location.search);
  let token = params.get("access_token");
  if (token) {
    sessionStorage.setItem("tandem.token", token);
    params.delete("access_token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  } else {
    token = sessionStorage.getItem("tandem.token");
  }
  const $ = (id) => document.getElementById(id);

  function human(s) {
    if (s === null || s === undefined) return "–";
    if (s < 90) return `${Math.round(s)}s`;
    if (s < 5400) return `${Math.round(s / 60)}m`;
    if (s < 129600) return `${(s / 3600).toFixed(1)}h`;
    return `${(s / 86400).toFixed(1)}d`;
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = String(text);
    return td;
  }

  function notice(text) {
    $("notice").hidden = !text;
    $("notice").textContent = text || "";
  }

  function query() {
    const q = new URLSearchParams();
    q.set($("kind").value, $("name").value.trim());
    if ($("window").value.trim()) q.set("window", $("window").value.trim());
    return q;
  }

  async function get(path, q) {
    const response = await fetch(`${path}?${q}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) {
      let detail = `${response.status}`;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    return response;
  }

  async function show() {
    const q = query();
    history.replaceState(null, "", `${location.pathname}?${q}`);
    try {
      const [figures, drawing] = await Promise.all([
        get("/api/v1/value-stream", q).then((r) => r.json()),
        get("/api/v1/value-stream.svg", q).then((r) => r.text()),
      ]);
      notice("");
      const doc = new DOMParser().parseFromString(drawing, "image/svg+xml");
      for (const s of doc.querySelectorAll("script, foreignObject")) s.remove();
      $("map").replaceChildren(document.importNode(doc.documentElement, true));
      const eff = figures.flow_efficiency === null ? "–" : `${(figures.flow_efficiency * 100).toFixed(1)} %`;
      const costly = figures.stages.find((s) => s.name === figures.costliest_stage);
      const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
      $("summary").textContent = `${count(figures.deliveries, "delivery", "deliveries")} and ` +
        `${count(figures.failures, "failure", "failures")} of ` +
        `${figures.services.join(", ") || "no service"} · flow efficiency ${eff} · ` +
        `costliest stage: ${costly ? costly.label : "none yet"}`;
      const rows = figures.stages.map((s) => {
        const tr = document.createElement("tr");
        tr.dataset.stage = s.name;
        if (s.name === figures.costliest_stage) tr.className = "costliest";
        tr.append(cell(s.label), cell(`${s.holder}: ${s.teams.join(", ") || "–"}`), cell(s.count),
          cell(human(s.p50_s)), cell(human(s.p90_s)), cell(human(s.wait_s)), cell(human(s.work_s)),
          cell(s.wait_share === null ? "–" : `${Math.round(s.wait_share * 100)} %`));
        return tr;
      });
      $("stages").tBodies[0].replaceChildren(...rows);
      const dq = new URLSearchParams(q);
      dq.set("download", "true");
      dq.set("access_token", token);
      $("download").href = `/api/v1/value-stream.svg?${dq}`;
    } catch (err) {
      notice(`The value stream could not be shown: ${err.message}`);
    }
  }

  if (!token) {
    notice("Open this page with ?access_token=<a viewer token>.");
    return;
  }
  for (const kind of ["service", "team", "system"]) {
    if (params.get(kind)) { $("kind").value = kind; $("name").value = params.get(kind); }
  }
  if (params.get("window")) $("window").value = params.get("window");
  $("scope").addEventListener("submit", (ev) => { ev.preventDefault(); show(); });
  if ($("name").value) show();
})();
