// Tandem live board: a snapshot from /api/v1/board, then Server-Sent Events from
// /api/v1/stream. Everything from the events is put on the page with textContent only.
(() => {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const CLOSED_INCIDENT = new Set(["resolved", "closed", "canceled"]);
  const METRICS = [
    ["deployment_frequency", "Deploys"],
    ["lead_time", "Lead time"],
    ["change_failure_rate", "Fail rate"],
    ["failed_deployment_recovery_time", "Recovery"],
    ["deployment_rework_rate", "Rework"],
  ];

  // The token comes once in the URL (?access_token=); keep it out of the address bar.
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
  const seen = new Set();
  let source = null;
  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function replace(container, nodes, emptyText) {
    container.replaceChildren(...nodes);
    if (!nodes.length && emptyText) container.append(el("div", "empty", emptyText));
  }

  function safeClass(value) {
    return String(value || "").replace(/[^a-z0-9_-]/gi, "");
  }

  function chip(value) {
    return el("span", "chip " + safeClass(value), String(value || "?").replace(/_/g, " "));
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
    if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    const h = Math.floor(s / 3600);
    if (h < 48) return `${h}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function ago(iso) {
    if (!iso) return "";
    const ms = Date.now() - Date.parse(iso);
    if (ms < 60000) return "just now";
    if (ms < 3600000) return `${Math.floor(ms / 60000)}m ago`;
    if (ms < 172800000) return `${Math.floor(ms / 3600000)}h ago`;
    return `${Math.floor(ms / 86400000)}d ago`;
  }

  function hhmm(iso) {
    // Times within the next or last day show as HH:MM (UTC); others with their date.
    if (!iso) return "";
    const d = new Date(iso);
    const time = d.toISOString().slice(11, 16);
    if (Math.abs(d.getTime() - Date.now()) < 20 * 3600000) return time;
    const month = d.toLocaleString("en", { month: "short", timeZone: "UTC" });
    return `${d.getUTCDate()} ${month} ${time}`;
  }

  function feedTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Date.now() - d.getTime() < 20 * 3600000) return d.toISOString().slice(11, 19);
    return `${d.getUTCDate()} ${d.toLocaleString("en", { month: "short", timeZone: "UTC" })}`;
  }

  function hours(value) {
    if (value === null || value === undefined) return "–";
    if (value < 1) return `${Math.round(value * 60)} min`;
    if (value < 48) return `${value.toFixed(1)} h`;
    return `${(value / 24).toFixed(1)} d`;
  }

  function formatMetric(name, metric) {
    if (!metric || metric.value === null || metric.value === undefined) return "no data";
    if (name === "deployment_frequency") return `${metric.value.toFixed(1)} / wk`;
    if (metric.unit === "ratio") return `${(100 * metric.value).toFixed(1)} %`;
    return hours(metric.value);
  }

  // -- status ----------------------------------------------------------------------------

  function setStatus(state, text) {
    $("status").className = "status " + state;
    $("status-text").textContent = text;
  }

  function notice(text) {
    const box = $("notice");
    box.hidden = !text;
    box.textContent = text || "";
  }

  // -- incidents -------------------------------------------------------------------------

  function slaClock(incident) {
    const sla = incident.sla || {};
    const span = el("span", "sla");
    if (CLOSED_INCIDENT.has(incident.status)) {
      span.textContent = sla.breached && sla.breached.length ? "SLA breached" : "";
      if (sla.breached && sla.breached.length) span.classList.add("breached");
      return span;
    }
    const due = !sla.responded && sla.response_due_at ? sla.response_due_at : sla.resolution_due_at;
    if (!due) {
      span.textContent = "no SLA";
      return span;
    }
    span.dataset.due = due;
    span.dataset.kind = !sla.responded && sla.response_due_at ? "ack" : "resolve";
    span.dataset.breached = (sla.breached || []).join(",");
    tickClock(span);
    return span;
  }

  function tickClock(span) {
    const left = Date.parse(span.dataset.due) - Date.now();
    const kind = span.dataset.kind;
    span.classList.remove("ok", "soon", "breached");
    if (left < 0 || span.dataset.breached.includes(kind === "ack" ? "response" : "resolution")) {
      span.textContent = `${kind} overdue ${duration(left)}`;
      span.classList.add("breached");
    } else {
      span.textContent = `${kind} in ${duration(left)}`;
      span.classList.add(left < 15 * 60000 ? "soon" : "ok");
    }
  }

  function incidentRow(incident, withClock) {
    const p = Number(incident.priority) || 5;
    const row = el("div", `row incident p${p}`);
    row.dataset.incidentId = incident.id;
    row.dataset.status = incident.status;
    row.append(el("span", `prio p${p}`, `P${p}`));
    row.append(el("span", "num", incident.number));
    const title = el("div", "title");
    title.append(el("span", "text", incident.title));
    if (incident.major) title.append(el("span", "tag major", "major"));
    const cell = el("div", "cell");
    const actor = incident.last_actor ? ` · last by ${incident.last_actor}` : "";
    cell.append(title, el("div", "meta", `${incident.service} · ${incident.environment} · ` +
      `reported ${ago(incident.sla && incident.sla.reported_at)}${actor}`));
    // Who works it, and who owns and runs the service (the catalog's word).
    const teams = incident.teams || {};
    const who = el("div", "meta teams");
    const assigned = [incident.assignee, incident.assignment_group && (incident.assignee
      ? `(${incident.assignment_group})` : incident.assignment_group)].filter(Boolean).join(" ");
    who.append(el("span", "group " + (assigned ? "" : "unassigned"),
      assigned ? `assigned to ${assigned}` : "unassigned"));
    const runs = teams.operations_team && teams.operations_team !== incident.assignment_group
      ? ` · run by ${teams.operations_team}` : "";
    if (teams.owner_team) {
      who.append(document.createTextNode(` · built by ${teams.owner_team}${runs}`));
    } else {
      who.append(el("span", "tag unowned", "unowned service"));
    }
    cell.append(who);
    row.append(cell);
    row.append(chip(incident.status));
    if (withClock) row.append(slaClock(incident));
    return row;
  }

  function renderIncidents(incidents) {
    const open = incidents.open || [];
    $("incident-count").textContent = open.length ? `(${open.length})` : "";
    replace($("incidents"), open.map((i) => incidentRow(i, true)), "No open incidents.");
    replace($("resolved"), (incidents.recently_resolved || []).map((i) => incidentRow(i, false)),
      "None.");
  }

  // -- changes and freezes ---------------------------------------------------------------

  function renderChanges(changes) {
    $("change-count").textContent = changes.length ? `(${changes.length})` : "";
    replace($("changes"), changes.map((c) => {
      const row = el("div", "row change");
      row.dataset.changeId = c.id;
      row.append(el("span", "num", c.number));
      const body = el("div", "title");
      body.append(el("span", "text", c.title || ""));
      body.append(el("span", "tag kind", c.type));
      const meta = el("div", "meta",
        `${c.service} · ${c.environment || ""} · ${hhmm(c.planned_start)}–${hhmm(c.planned_end)}`);
      const cell = el("div");
      cell.append(body, meta);
      row.append(cell, chip(c.status));
      return row;
    }), "No changes in flight.");
  }

  function renderFreezes(freezes) {
    $("freeze-count").textContent = freezes.length ? `(${freezes.length})` : "";
    replace($("freezes"), freezes.map((f) => {
      const row = el("div", `row freeze ${f.active ? "active" : "scheduled"}`);
      row.dataset.freezeId = f.id;
      const cell = el("div");
      const services = f.services && f.services.length ? f.services.join(", ") : "every service";
      const head = el("div", "title", services);
      if (f.source === "incident") head.append(el("span", "tag major", "major incident"));
      cell.append(head, el("div", "meta", f.reason || ""));
      const until = f.ends_at ? `until ${hhmm(f.ends_at)}`
        : f.source === "incident" ? "until its incident is resolved" : "until ended";
      const when = f.active ? `frozen ${until}` : `from ${hhmm(f.starts_at)}, ${until}`;
      row.append(cell, el("span", "chip " + (f.active ? "prevented" : "awaiting"), when));
      return row;
    }), "No freezes.");
  }

  // -- the catalog -----------------------------------------------------------------------

  function renderServices(services) {
    const unowned = services.filter((s) => s.unowned).length;
    $("service-count").textContent = services.length
      ? `(${services.length}${unowned ? `, ${unowned} unowned` : ""})` : "";
    replace($("services"), services.map((s) => {
      const row = el("div", "row catalog-service" + (s.unowned ? " unowned" : ""));
      row.dataset.service = s.name;
      const head = el("div", "title", s.name);
      if (s.unowned) head.append(el("span", "tag unowned", "unowned"));
      if (s.tier) head.append(el("span", "tag kind", `tier ${s.tier}`));
      const meta = s.unowned ? "no owner team written down"
        : `owner ${s.owner_team} · runs ${s.operations_team || "–"}`;
      const cell = el("div");
      cell.append(head, el("div", "meta", meta));
      row.append(cell, el("span", "meta", s.lifecycle || s.source || ""));
      return row;
    }), "No services in the catalog yet.");
  }

  // -- deployments -----------------------------------------------------------------------

  // Reasons read as sentences: each ends with its stop, one space between them.
  function sentences(texts) {
    return texts.map((t) => String(t).trim()).filter(Boolean)
      .map((t) => (/[.!?]$/.test(t) ? t : `${t}.`)).join(" ");
  }

  function renderDeployments(deployments) {
    replace($("deployments"), deployments.map((d) => {
      const row = el("div", "row deployment");
      row.dataset.deploymentId = d.id;
      const gate = d.gate || {};
      row.append(el("span", "num", d.number));
      row.append(el("span", "title", d.service));
      row.append(el("span", "mono", d.software_version));
      row.append(el("span", "meta", d.environment));
      row.append(chip(d.status));
      const decision = el("div", "reasons");
      decision.append(chip(gate.decision ? `gate ${gate.decision}` : "no gate"));
      decision.firstChild.classList.add(safeClass(gate.decision));
      const reasons = (gate.reasons || []).map((r) => r.message || r.code).filter(Boolean);
      if (reasons.length) decision.append(document.createTextNode(" " + sentences(reasons)));
      row.append(decision);
      const by = d.last_actor ? ` by ${d.last_actor}` : "";
      row.append(el("span", "meta", ago(d.finished_at || d.started_at || d.created_at) + by));
      return row;
    }), "No deployments yet.");
  }

  // -- DORA ------------------------------------------------------------------------------

  function sparkline(values, label) {
    const w = 160;
    const h = 40;
    const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none",
      role: "img", "aria-label": label });
    const title = svg("title");
    title.textContent = label;
    chart.append(title);
    chart.append(svg("line", { class: "axis", x1: 0, y1: h - 1, x2: w, y2: h - 1 }));
    const known = values.filter((v) => v !== null && v !== undefined);
    if (!known.length) return chart;
    const max = Math.max(...known, 1e-9);
    const step = values.length > 1 ? w / (values.length - 1) : w;
    const points = [];
    values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      points.push([i * step, h - 3 - (v / max) * (h - 8)]);
    });
    const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    if (points.length > 1) {
      const area = `${points[0][0].toFixed(1)},${h - 1} ${line} ${points[points.length - 1][0].toFixed(1)},${h - 1}`;
      chart.append(svg("polygon", { class: "area", points: area }));
    }
    chart.append(svg("polyline", { class: "line", points: line }));
    for (const [x, y] of points) chart.append(svg("circle", { class: "line", cx: x, cy: y, r: 1.8 }));
    return chart;
  }

  function renderDora(dora, weeks) {
    const first = dora[0];
    $("dora-scope").textContent = first
      ? `· ${first.environment} · last ${first.window_days} days · trend over ${weeks} weeks` : "";
    replace($("dora"), dora.map((s) => {
      const card = el("div", "service-card");
      card.dataset.service = s.service;
      card.append(el("h3", "", s.service));
      const grid = el("div", "metrics");
      for (const [name, label] of METRICS) {
        const m = s.metrics[name] || {};
        const bucket = m.bucket || "none";
        const tile = el("div", `metric ${safeClass(bucket)}`);
        tile.dataset.metric = name;
        tile.append(el("div", "label", label));
        tile.append(el("span", `bucket ${safeClass(bucket)}`, m.bucket || "n/a"));
        tile.append(el("div", "value", formatMetric(name, m)));
        const trend = (m.trend || []).map((v) => (v === null ? "–" : String(v))).join(", ");
        tile.append(sparkline(m.trend || [], `${label} per week (${m.unit}): ${trend}`));
        grid.append(tile);
      }
      card.append(grid);
      return card;
    }), "No production deployments seen yet.");
  }

  // -- feed ------------------------------------------------------------------------------

  function feedItem(item, fresh) {
    const li = el("li", fresh ? "fresh" : "");
    li.dataset.eventId = item.id;
    li.append(el("time", "", feedTime(item.time)));
    const what = el("div", "what");
    what.append(el("span", "type", item.type.replace(/^tandem\./, "")));
    what.append(document.createTextNode(" "));
    what.append(el("b", "", item.number || ""));
    what.append(document.createTextNode(` ${item.summary || ""}`));
    const detail = el("div", "meta", [item.title, (item.services || []).join(", ")]
      .filter(Boolean).join(" · "));
    what.append(detail);
    li.append(what);
    return li;
  }

  function describe(type, data) {
    const verb = type.split(".").pop();
    if (verb === "transitioned") return `${data.from} → ${data.to}`;
    if (verb === "updated" && data.changes) return "changed " + Object.keys(data.changes).sort().join(", ");
    if (verb === "gate_decided" && data.gate) return `gate ${data.gate.decision}`;
    return verb.replace(/_/g, " ");
  }

  function addEvent(event, id) {
    if (seen.has(id)) return;
    seen.add(id);
    const aggregate = event.type.split(".")[1];
    const snap = (event.data && event.data[aggregate]) || {};
    const services = snap.services ? (snap.services.length ? snap.services : ["every service"])
      : (snap.service ? [snap.service] : []);
    const item = { id, type: event.type, time: event.time, number: snap.number,
      title: snap.title || (aggregate === "deployment" ? snap.software_version : snap.reason), services,
      summary: describe(event.type, event.data || {}) };
    const list = $("feed");
    list.prepend(feedItem(item, true));
    while (list.children.length > 60) list.lastChild.remove();
  }

  // -- loading ---------------------------------------------------------------------------

  function render(board) {
    renderIncidents(board.incidents);
    renderChanges(board.changes);
    renderFreezes(board.freezes);
    renderDeployments(board.deployments);
    renderServices(board.services || []);
    renderDora(board.dora, board.dora_weeks);
    const open = board.incidents.open || [];
    const majors = open.filter((i) => i.major).length;
    const active = board.freezes.filter((f) => f.active).length;
    const summary = $("summary");
    summary.replaceChildren();
    for (const [n, label] of [[open.length, "open incidents"], [majors, "major"],
      [board.changes.length, "changes in flight"], [active, "active freezes"]]) {
      const span = el("span");
      span.append(el("b", "", n), document.createTextNode(" " + label));
      summary.append(span);
    }
    if (!board.caught_up) {
      setStatus("connecting", "replaying topics");
    } else if (source && source.readyState === EventSource.OPEN) {
      setStatus("live", "live");
    }
  }

  async function fetchBoard() {
    // Signed in (no token here): the HttpOnly session cookie goes with same-origin requests.
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch("/api/v1/board", { headers, credentials: "same-origin" });
    if (response.status === 401 || response.status === 403) {
      throw new Error("unauthorized");
    }
    if (!response.ok) throw new Error(`board answered ${response.status}`);
    return response.json();
  }

  async function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      render(await fetchBoard());
    } catch (err) {
      if (String(err.message) === "unauthorized") stop("The token was refused; open the board with a valid ?access_token=.");
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        scheduleRefresh();
      }
    }
  }

  function scheduleRefresh() {
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, 150);
  }

  function stop(message) {
    if (source) source.close();
    setStatus("offline", "offline");
    notice(message);
  }

  function connect(lastEventId) {
    const query = new URLSearchParams();
    if (token) query.set("access_token", token);
    if (lastEventId) query.set("last_event_id", lastEventId);
    const url = "/api/v1/stream" + (query.toString() ? "?" + query.toString() : "");
    source = new EventSource(url);
    let dropped = false;
    source.onopen = () => {
      setStatus("live", "live");
      // After a reconnect the stream resumes from Last-Event-ID; the panels catch up too.
      if (dropped) scheduleRefresh();
    };
    source.onerror = () => {
      dropped = true;
      if (source.readyState === EventSource.CLOSED) {
        setStatus("offline", "offline – reload to retry");
      } else {
        setStatus("connecting", "reconnecting");
      }
    };
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      addEvent(event, message.lastEventId);
      scheduleRefresh();
    };
  }

  async function signedIn() {
    try {
      const response = await fetch("/auth/session", { credentials: "same-origin" });
      return response.ok ? await response.json() : { signed_in: false, sign_in: false };
    } catch {
      return { signed_in: false, sign_in: false };
    }
  }

  async function start() {
    if (!token) {
      const session = await signedIn();
      if (!session.signed_in && session.sign_in) {
        location.assign("/login");
        return;
      }
      if (!session.signed_in) {
        stop("Open the board with ?access_token=<viewer token> (tandem dev prints the URL).");
        return;
      }
    }
    let board;
    try {
      board = await fetchBoard();
    } catch (err) {
      stop(String(err.message) === "unauthorized"
        ? "The token was refused; open the board with a valid ?access_token=."
        : "The dashboard cannot be reached; reload to retry.");
      return;
    }
    render(board);
    const feed = (board.feed || []).slice().reverse();
    for (const item of feed) {
      seen.add(item.id);
      $("feed").prepend(feedItem(item, false));
    }
    // With nothing seen yet, an id the ring does not hold asks for all it has since.
    connect(board.last_event_id || "start");
    // Windows (freezes, DORA weeks) move with time even when no event arrives.
    setInterval(scheduleRefresh, 30000);
  }

  function tick() {
    $("clock").textContent = new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC";
    for (const span of document.querySelectorAll(".sla[data-due]")) tickClock(span);
  }

  tick();
  setInterval(tick, 1000);

  start();
})();
