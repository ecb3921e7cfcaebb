// vhc-watch staff console. Plain JavaScript, no build step, no CDN.
// Everything that came from the API or a person is put in the page as text
// (textContent, attributes set one by one), never parsed as HTML.
"use strict";

const I18N = {
  vi: {
    skip: "Bỏ qua đến nội dung", tagline: "Giám sát khai báo y tế", offline: "Ngoại tuyến",
    live: "Trực tiếp", logout: "Đăng xuất", login_title: "Đăng nhập cán bộ",
    token: "Mã truy cập (staff token)", login: "Đăng nhập", bad_token: "Mã truy cập không hợp lệ.",
    tab_alerts: "Cảnh báo", tab_checkpoints: "Điểm kiểm soát", tab_wards: "Phường/xã",
    tab_report: "Báo cáo kiểm tra", f_kind: "Loại", f_severity: "Mức độ", f_status: "Trạng thái",
    f_ward: "Mã phường/xã", f_checkpoint: "Mã điểm", all: "Tất cả", apply: "Lọc",
    refresh: "Làm mới", no_alerts: "Không có cảnh báo.", c_id: "Mã", c_name: "Tên",
    c_ward: "Phường/xã", c_5m: "5 phút", c_1h: "1 giờ", c_24h: "24 giờ", c_last: "Lần cuối",
    c_naming: "Tên đúng quy ước", c_underused: "Dùng ít", c_print: "In, lịch sử", w_cps: "Số điểm",
    w_sympt: "Có triệu chứng (24 giờ)", w_quiet: "Im lặng 1 giờ", w_naming: "Sai tên",
    r_date: "Ngày", r_show: "Xem báo cáo", r_pdf: "Mở PDF", yes: "Có", no: "Không",
    never: "chưa có", poster: "Áp phích", report: "Báo cáo",
    info_group: (n, parts) => `${n} cảnh báo thông tin từng khai báo (${parts}) được gộp.`,
    info_show: "Hiện từng cảnh báo", info_hide: "Ẩn cảnh báo thông tin",
    roles: { viewer: "Xem", responder: "Xử lý cảnh báo", case_officer: "Cán bộ dịch tễ", admin: "Quản trị" },
    everywhere: "toàn quốc", read_only: "Chỉ xem: tài khoản này không được tiếp nhận hay xử lý cảnh báo.",
    ack: "Tiếp nhận", resolve: "Đã xử lý", note: "Ghi chú", evidence: "Bằng chứng",
    method: "Phương pháp", observed: "Quan sát", expected: "Kỳ vọng", threshold: "Ngưỡng",
    declarations: "Khai báo liên quan", flags: "Dấu hiệu", exposed: "Số người phơi nhiễm",
    window: "Khoảng thời gian", history: "Lịch sử", detected: "Phát hiện lúc",
    chart_title: "Chuỗi số liệu so với dải kỳ vọng", chart_band: "dải kỳ vọng",
    chart_series: "quan sát", suggestion: "Tên gợi ý", violations: "Vi phạm",
    saved: "Đã lưu.", failed: "Không thực hiện được", by: "bởi", audit: "Lịch sử thay đổi",
    actions: { "checkpoint.create": "Đăng ký", "checkpoint.update": "Sửa", "alert.acknowledge": "Tiếp nhận",
      "alert.resolve": "Xử lý xong" },
    severity: { info: "Thông tin", warning: "Cảnh báo", critical: "Nghiêm trọng" },
    status: { open: "Mới", acknowledged: "Đã tiếp nhận", resolved: "Đã xử lý" },
    kind: {
      symptomatic_declaration: "Khai báo có triệu chứng", fever: "Sốt", close_contact: "Tiếp xúc gần",
      travel_from_outbreak_area: "Đi về từ vùng dịch", symptom_cluster: "Cụm ca có triệu chứng",
      symptom_aberration: "Tăng bất thường", volume_surge: "Khai báo tăng đột biến",
      checkpoint_silent: "Điểm im lặng", exposure: "Phơi nhiễm", naming_violation: "Đặt tên sai quy ước",
    },
  },
  en: {
    skip: "Skip to content", tagline: "Health declaration surveillance", offline: "Offline",
    live: "Live", logout: "Log out", login_title: "Staff login", token: "Staff token",
    login: "Log in", bad_token: "That token is not valid.", tab_alerts: "Alerts",
    tab_checkpoints: "Checkpoints", tab_wards: "Wards", tab_report: "Inspection report",
    f_kind: "Kind", f_severity: "Severity", f_status: "Status", f_ward: "Ward code",
    f_checkpoint: "Checkpoint id", all: "All", apply: "Filter", refresh: "Refresh",
    no_alerts: "No alerts.", c_id: "Id", c_name: "Name", c_ward: "Ward", c_5m: "5 min", c_1h: "1 h",
    c_24h: "24 h", c_last: "Last seen", c_naming: "Name conforms", c_underused: "Under-used",
    c_print: "Print, history", w_cps: "Checkpoints", w_sympt: "Symptomatic (24 h)", w_quiet: "Quiet 1 h",
    w_naming: "Bad names", r_date: "Date", r_show: "Show report", r_pdf: "Open PDF",
    yes: "Yes", no: "No", never: "never", poster: "Poster", report: "Report",
    info_group: (n, parts) => `${n} per-declaration info alerts (${parts}) grouped.`,
    roles: { viewer: "Viewer", responder: "Responder", case_officer: "Case officer", admin: "Admin" },
    everywhere: "everywhere", read_only: "Read only: this token may not acknowledge or resolve alerts.",
    info_show: "Show each one", info_hide: "Hide info alerts", ack: "Acknowledge",
    resolve: "Resolve", note: "Note", evidence: "Evidence", method: "Method",
    observed: "Observed", expected: "Expected", threshold: "Threshold",
    declarations: "Declarations behind it", flags: "Flags", exposed: "People exposed",
    window: "Window", history: "History", detected: "Detected at",
    chart_title: "Series against its expected band", chart_band: "expected band",
    chart_series: "observed", suggestion: "Suggested name", violations: "Violations",
    saved: "Saved.", failed: "Could not do it", by: "by", audit: "Change history",
    actions: { "checkpoint.create": "Registered", "checkpoint.update": "Changed", "alert.acknowledge": "Acknowledged",
      "alert.resolve": "Resolved" },
    severity: { info: "Info", warning: "Warning", critical: "Critical" },
    status: { open: "Open", acknowledged: "Acknowledged", resolved: "Resolved" },
    kind: {
      symptomatic_declaration: "Symptomatic declaration", fever: "Fever", close_contact: "Close contact",
      travel_from_outbreak_area: "Travel from outbreak area", symptom_cluster: "Symptom cluster",
      symptom_aberration: "Abnormal rise", volume_surge: "Volume surge",
      checkpoint_silent: "Silent checkpoint", exposure: "Exposure", naming_violation: "Naming violation",
    },
  },
};
const PER_DECLARATION = new Set(["symptomatic_declaration", "fever", "close_contact", "travel_from_outbreak_area"]);
const BASELINE = new Set(["symptom_aberration", "volume_surge"]);
const RANK = { info: 0, warning: 1, critical: 2 };

const state = {
  lang: localStorage.getItem("vhc.lang") || "vi",
  token: sessionStorage.getItem("vhc.token") || "",
  alerts: new Map(),        // alert_id -> alert
  order: [],                // alert ids, newest first
  showInfo: false,
  infoCounts: new Map(),    // kind -> count of info alerts seen
  selected: null,
  source: null,
  me: null,                 // {label, role, area} of the token (GET /v1/me)
  lastEventId: null,
  fresh: new Set(),
};

const $ = (sel) => document.querySelector(sel);
const t = (key) => I18N[state.lang][key] ?? I18N.vi[key] ?? key;
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
function fmtTime(iso) {
  if (!iso) return t("never");
  const d = new Date(iso);
  return d.toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB", { timeZone: "Asia/Ho_Chi_Minh", hour12: false });
}

// ------------------------------------------------------------------ API
async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${state.token}` }, options.headers || {});
  const answer = await fetch(path, Object.assign({}, options, { headers }));
  if (answer.status === 401) { logout(); throw new Error(t("bad_token")); }
  if (!answer.ok) {
    let detail = `${answer.status}`;
    try { const body = await answer.json(); detail += `: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return answer;
}

// ------------------------------------------------------------------ language
function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("#lang").textContent = state.lang === "vi" ? "English" : "Tiếng Việt";
  fillSelect("#f-kind", Object.keys(I18N.vi.kind), t("kind"));
  fillSelect("#f-severity", ["critical", "warning", "info"], t("severity"));
  fillSelect("#f-status", ["open", "acknowledged", "resolved"], t("status"));
  setLive(state.source && state.source.readyState === 1);
  renderWho();
  renderAlerts();
  renderDetail();
}
function fillSelect(sel, values, names) {
  const select = $(sel);
  const current = select.value;
  select.replaceChildren(el("option", { value: "" }, t("all")),
    ...values.map((v) => el("option", { value: v }, names[v] || v)));
  select.value = current;
}
function setLive(on) {
  const live = $("#live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = on ? t("live") : t("offline");
}

function renderWho() {
  if (!state.me) return;
  $("#whoami").textContent = `${t("roles")[state.me.role] || state.me.role} · ${state.me.area === "*" ? t("everywhere") : state.me.area}`;
}

// ------------------------------------------------------------------ login
async function login(token) {
  state.token = token;
  state.me = await (await api("/v1/me")).json();   // 401 throws
  sessionStorage.setItem("vhc.token", token);
  renderWho();
  $("#whoami").hidden = false;
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  await loadAlerts();
  connect();
  loadOverview().catch(showError);
}
function logout() {
  sessionStorage.removeItem("vhc.token");
  state.token = "";
  if (state.source) state.source.close();
  state.source = null;
  $("#app").hidden = true;
  $("#logout").hidden = true;
  $("#whoami").hidden = true;
  state.me = null;
  $("#login").hidden = false;
  setLive(false);
}
function showError(err) { console.error(err); }

// ------------------------------------------------------------------ alerts
function filters() {
  const form = new FormData($("#filters"));
  const out = {};
  for (const [k, v] of form.entries()) if (v) out[k] = String(v).trim();
  return out;
}
function matches(alert) {
  const f = filters();
  return (!f.kind || alert.kind === f.kind) && (!f.severity || alert.severity === f.severity)
    && (!f.status || alert.status === f.status) && (!f.ward_code || alert.ward_code === f.ward_code)
    && (!f.checkpoint_id || alert.checkpoint_id === f.checkpoint_id);
}
async function loadAlerts() {
  const f = filters();
  const query = new URLSearchParams(Object.assign({ limit: "200" }, f));
  if (!f.severity && !state.showInfo) query.set("min_severity", "warning");
  const page = await (await api(`/v1/alerts?${query}`)).json();
  state.alerts.clear();
  state.order = [];
  for (const a of page.items) { state.alerts.set(a.alert_id, a); state.order.push(a.alert_id); }
  const info = await (await api(`/v1/alerts?severity=info&limit=500${f.ward_code ? `&ward_code=${encodeURIComponent(f.ward_code)}` : ""}`)).json();
  state.infoCounts.clear();
  for (const a of info.items) state.infoCounts.set(a.kind, (state.infoCounts.get(a.kind) || 0) + 1);
  renderAlerts();
}
function listed(alert) {
  if (!matches(alert)) return false;
  return state.showInfo || alert.severity !== "info" || filters().severity === "info";
}
function onAlert(alert) {
  const known = state.alerts.has(alert.alert_id);
  if (!known && alert.severity === "info" && PER_DECLARATION.has(alert.kind)) {
    state.infoCounts.set(alert.kind, (state.infoCounts.get(alert.kind) || 0) + 1);
  }
  state.alerts.set(alert.alert_id, alert);
  if (!known) { state.order.unshift(alert.alert_id); state.fresh.add(alert.alert_id); }
  if (state.order.length > 1000) for (const id of state.order.splice(1000)) state.alerts.delete(id);
  renderAlerts();
  if (state.selected === alert.alert_id) renderDetail();
}
function renderAlerts() {
  const list = $("#alerts");
  if (!list) return;
  const items = state.order.map((id) => state.alerts.get(id)).filter((a) => a && listed(a));
  list.replaceChildren(...items.slice(0, 300).map(alertItem));
  $("#alerts-empty").hidden = items.length > 0;
  const total = [...state.infoCounts.values()].reduce((a, b) => a + b, 0);
  const parts = [...state.infoCounts.entries()].map(([k, n]) => `${t("kind")[k] || k}: ${n}`).join(", ");
  $("#info-group").replaceChildren(
    el("span", {}, I18N[state.lang].info_group(total, parts || "—"), " "),
    el("button", { type: "button", id: "toggle-info", onclick: toggleInfo }, state.showInfo ? t("info_hide") : t("info_show")));
  state.fresh.clear();
}
function alertItem(a) {
  const cls = `sev-${a.severity}${state.fresh.has(a.alert_id) ? " fresh" : ""}`;
  const summary = (a.summary && (a.summary[state.lang] || a.summary.vi)) || a.kind;
  return el("li", { class: cls, "data-alert-id": a.alert_id, "data-severity": a.severity },
    el("button", { type: "button", class: "row", "aria-pressed": state.selected === a.alert_id ? "true" : "false",
      onclick: () => { state.selected = a.alert_id; renderDetail(); renderAlerts(); } },
      el("span", { class: `badge ${a.severity}` }, t("severity")[a.severity] || a.severity),
      el("span", { class: `badge status-${a.status}` }, t("status")[a.status] || a.status),
      el("strong", {}, t("kind")[a.kind] || a.kind), el("br"),
      el("span", {}, summary), el("br"),
      el("span", { class: "meta" }, `${fmtTime(a.detected_at)} · ${a.checkpoint_id || ""} ${a.ward_code ? "· " + a.ward_code : ""}`)));
}
async function toggleInfo() {
  state.showInfo = !state.showInfo;
  await loadAlerts();
}

function renderDetail() {
  const panel = $("#detail");
  const a = state.selected && state.alerts.get(state.selected);
  if (!a) { panel.hidden = true; return; }
  panel.hidden = false;
  const ev = a.evidence || {};
  const rows = [
    [t("detected"), fmtTime(a.detected_at)],
    a.window_start ? [t("window"), `${fmtTime(a.window_start)} – ${fmtTime(a.window_end)}`] : null,
    [t("method"), ev.method],
    ev.observed != null ? [t("observed"), ev.observed] : null,
    ev.expected != null ? [t("expected"), ev.expected] : null,
    ev.threshold != null ? [t("threshold"), ev.threshold] : null,
    ev.exposed_count != null ? [t("exposed"), ev.exposed_count] : null,
    ev.flags && ev.flags.length ? [t("flags"), ev.flags.map((f) => t("kind")[f] || f).join(", ")] : null,
    ...Object.entries(ev.statistics || {}).map(([k, v]) => [k, v]),
    ev.declaration_ids && ev.declaration_ids.length ? [t("declarations"), ev.declaration_ids.join(", ")] : null,
    ev.violations && ev.violations.length ? [t("violations"), ev.violations.join("; ")] : null,
    ev.suggestion ? [t("suggestion"), ev.suggestion] : null,
  ].filter(Boolean);
  const note = el("textarea", { id: "note", maxlength: "2000", "aria-label": t("note"), placeholder: t("note") });
  const message = el("p", { class: "meta", role: "status" });
  const act = (verb) => async () => {
    try {
      const body = JSON.stringify({ note: note.value || null });
      const changed = await (await api(`/v1/alerts/${encodeURIComponent(a.alert_id)}/${verb}`, {
        method: "POST", body, headers: { "Content-Type": "application/json" } })).json();
      onAlert(changed);
      message.textContent = t("saved");
    } catch (err) { message.textContent = `${t("failed")}: ${err.message}`; }
  };
  const resolved = a.status === "resolved";
  const mayAct = state.me && state.me.role !== "viewer";  // viewers read only
  panel.replaceChildren(...[
    el("h2", {}, t("kind")[a.kind] || a.kind, " ", el("span", { class: `badge ${a.severity}` }, t("severity")[a.severity])),
    el("p", {}, (a.summary && (a.summary[state.lang] || a.summary.vi)) || ""),
    el("p", { class: "meta" }, `${a.alert_id} · ${a.checkpoint_id || ""} ${a.ward_code || ""}`),
    el("h3", {}, t("evidence")),
    el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
    BASELINE.has(a.kind) && ev.series && ev.series.length ? chart(ev) : null,
    el("h3", {}, t("history")),
    el("ol", {}, ...(a.history || []).map((h) => el("li", {},
      `${t("status")[h.status] || h.status} · ${fmtTime(h.at)} · ${t("by")} ${h.by || ""}`,
      h.note ? el("div", { class: "meta" }, h.note) : null))),
    mayAct ? note : null,
    mayAct ? el("div", { class: "actions" },
      el("button", { type: "button", id: "ack", class: "primary", disabled: resolved || a.status === "acknowledged", onclick: act("ack") }, t("ack")),
      el("button", { type: "button", id: "resolve", disabled: resolved, onclick: act("resolve") }, t("resolve"))) : el("p", { class: "meta", id: "read-only" }, t("read_only")),
    message].filter(Boolean));
}

// A small SVG chart: the series as a line with points, the expected band shaded.
function chart(ev) {
  const NS = "http://www.w3.org/2000/svg";
  const s = (tag, attrs) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v)); return n; };
  const values = ev.series.map(Number);
  const low = (ev.series_expected || []).map(Number);
  const high = (ev.series_threshold || []).map(Number);
  const W = 320, H = 140, P = 24;
  const max = Math.max(1, ...values, ...high) * 1.1;
  const x = (i) => P + (i * (W - 2 * P)) / Math.max(1, values.length - 1);
  const y = (v) => H - P - (v / max) * (H - 2 * P);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("chart_title") });
  const title = s("title", {}); title.textContent = t("chart_title"); svg.append(title);
  svg.append(s("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#8c959f" }));
  if (low.length === values.length && high.length === values.length) {
    const top = high.map((v, i) => `${x(i)},${y(v)}`);
    const bottom = low.map((v, i) => `${x(i)},${y(v)}`).reverse();
    svg.append(s("polygon", { points: [...top, ...bottom].join(" "), fill: "#1f5f9933", stroke: "none" }));
    svg.append(s("polyline", { points: low.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: "#1f5f99", "stroke-dasharray": "4 3" }));
  }
  svg.append(s("polyline", { points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: "#b3141b", "stroke-width": 2 }));
  values.forEach((v, i) => svg.append(s("circle", { cx: x(i), cy: y(v), r: i === values.length - 1 ? 4 : 2.5, fill: "#b3141b" })));
  const label = s("text", { x: P, y: 14, "font-size": 11, fill: "#5b6570" });
  label.textContent = `${t("chart_series")} (${t("expected")}: ${ev.expected ?? "—"}, ${t("chart_band")})`;
  svg.append(label);
  const maxLabel = s("text", { x: 2, y: y(max / 1.1) + 4, "font-size": 10, fill: "#5b6570" });
  maxLabel.textContent = String(Math.round(max / 1.1));
  svg.append(maxLabel);
  return svg;
}

// ------------------------------------------------------------------ live stream
function connect() {
  if (state.source) state.source.close();
  const query = new URLSearchParams({ access_token: state.token });
  const source = new EventSource(`/v1/alerts/stream?${query}`);
  state.source = source;
  source.addEventListener("open", () => setLive(true));
  source.addEventListener("error", () => setLive(false));  // EventSource reconnects itself, with Last-Event-ID
  source.addEventListener("alert", (event) => {
    state.lastEventId = event.lastEventId;
    try { onAlert(JSON.parse(event.data)); } catch (err) { showError(err); }
  });
}

// ------------------------------------------------------------------ checkpoints and wards
async function loadOverview() {
  const ward = $("#cp-ward").value.trim();
  const data = await (await api(`/v1/overview${ward ? `?ward_code=${encodeURIComponent(ward)}` : ""}`)).json();
  $("#cp-asof").textContent = fmtTime(data.as_of);
  $("#cp-table tbody").replaceChildren(...data.checkpoints.map((c) => el("tr", { "data-checkpoint-id": c.checkpoint_id },
    el("td", {}, c.checkpoint_id), el("td", {}, c.name, el("div", { class: "meta" }, c.address)),
    el("td", {}, `${c.ward_name} (${c.ward_code})`),
    el("td", { class: "num" }, c.windows["5m"].total), el("td", { class: "num" }, c.windows["1h"].total),
    el("td", { class: "num" }, c.windows["24h"].total), el("td", {}, fmtTime(c.last_declaration_at)),
    el("td", {}, namingCell(c.naming)),
    el("td", {}, c.under_used ? el("span", { class: "bad" }, `${t("yes")} (${c.declarations_yesterday})`) : t("no")),
    el("td", {}, el("button", { type: "button", class: "poster", onclick: () => openBlob(`/v1/checkpoints/${encodeURIComponent(c.checkpoint_id)}/poster.pdf`) }, t("poster")),
      " ", el("button", { type: "button", class: "audit", "aria-expanded": "false", onclick: (event) => toggleAudit(event.currentTarget, c.checkpoint_id) }, t("audit"))))));
  $("#ward-table tbody").replaceChildren(...data.wards.map((w) => el("tr", { "data-ward-code": w.ward_code },
    el("td", {}, `${w.ward_name} (${w.ward_code})`, el("div", { class: "meta" }, w.province_name)),
    el("td", { class: "num" }, w.checkpoints), el("td", { class: "num" }, w.windows["1h"].total),
    el("td", { class: "num" }, w.windows["24h"].total), el("td", { class: "num" }, w.windows["24h"].symptomatic),
    el("td", { class: "num" }, w.quiet_1h), el("td", { class: "num" }, w.naming_violations),
    el("td", { class: "num" }, w.under_used),
    el("td", {}, el("button", { type: "button", class: "ward-report", onclick: () => { $("#r-ward").value = w.ward_code; selectTab("report"); showReport(); } }, t("report"))))));
}
// Who registered and changed a checkpoint: a row under it, opened on demand.
async function toggleAudit(button, checkpointId) {
  const row = button.closest("tr");
  const next = row.nextElementSibling;
  if (next && next.classList.contains("audit-row")) { next.remove(); button.setAttribute("aria-expanded", "false"); return; }
  const entries = await (await api(`/v1/checkpoints/${encodeURIComponent(checkpointId)}/audit`)).json();
  const list = el("ul", { class: "audit-list" }, ...entries.map((e) => el("li", {},
    `${t("actions")[e.action] || e.action} · ${fmtTime(e.at)} · ${t("by")} ${e.by}`,
    e.details && e.details.changed ? ` (${e.details.changed})` : "", e.note ? ` — ${e.note}` : "")));
  row.after(el("tr", { class: "audit-row" }, el("td", { colspan: "10" }, el("strong", {}, t("audit")), list)));
  button.setAttribute("aria-expanded", "true");
}
function namingCell(naming) {
  if (!naming) return "—";
  if (naming.conforms) return el("span", { class: "ok" }, t("yes"));
  return el("span", {}, el("span", { class: "bad" }, t("no")), el("div", { class: "meta" },
    naming.violations.map((v) => (state.lang === "vi" ? v.message_vi : v.message)).join("; ")),
    el("div", { class: "meta" }, `${t("suggestion")}: ${naming.suggestion}`));
}
async function openBlob(path, accept) {
  const answer = await api(path, accept ? { headers: { Accept: accept } } : {});
  const url = URL.createObjectURL(await answer.blob());
  window.open(url, "_blank", "noopener");
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
async function showReport(pdf = false) {
  const ward = $("#r-ward").value.trim();
  const day = $("#r-date").value;
  $("#r-error").textContent = "";
  const path = `/v1/reports/inspection?ward_code=${encodeURIComponent(ward)}&date=${encodeURIComponent(day)}`;
  try {
    if (pdf) { await openBlob(`${path}&format=pdf`); return; }
    const html = await (await api(path)).text();
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    $("#report-frame").src = url;
  } catch (err) { $("#r-error").textContent = `${t("failed")}: ${err.message}`; }
}

// ------------------------------------------------------------------ tabs and wiring
function selectTab(name) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    $(`#${tab.getAttribute("aria-controls")}`).hidden = !on;
  }
  if (name === "checkpoints" || name === "wards") loadOverview().catch(showError);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#r-date").value = new Date(Date.now() + 7 * 3600e3).toISOString().slice(0, 10);
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("vhc.lang", state.lang);
    applyLanguage();
  });
  $("#logout").addEventListener("click", logout);
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("#login-error").textContent = "";
    try { await login($("#token").value.trim()); } catch (err) { $("#login-error").textContent = err.message; }
  });
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); loadAlerts().catch(showError); });
  $("#cp-filter").addEventListener("submit", (event) => { event.preventDefault(); loadOverview().catch(showError); });
  $("#report-form").addEventListener("submit", (event) => { event.preventDefault(); showReport(); });
  $("#r-pdf").addEventListener("click", () => showReport(true));
  for (const tab of document.querySelectorAll('[role="tab"]')) tab.addEventListener("click", () => selectTab(tab.id.slice(4)));
  setInterval(() => { if (state.token && !$("#panel-checkpoints").hidden) loadOverview().catch(showError); }, 15_000);
  applyLanguage();
  if (state.token) login(state.token).catch(() => logout());
});
