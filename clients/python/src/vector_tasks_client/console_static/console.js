// The operator console. Every API call goes to this page's own server (/api/...), which
// forwards it to the service and signs it; the page holds no credential, only the token that
// server made, which it asks of every API call.
"use strict";

const TOKEN = document.querySelector('meta[name="console-token"]').content;
const KINDS = ["upsertion", "deletion"];
const FAILURES_FIELD = { upsertion: "failed_items", deletion: "failed_item_ids" };
const PAGE_SIZE = 20;
const FAILURES_PAGE_SIZE = 50;
const REFRESH_MS = 1500;
const RESTARTABLE = new Set(["done", "failed", "canceled"]);
const CANCELABLE = new Set(["pending", "running"]);

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body, requestId) {
    const error = (body && body.error) || {};
    super(error.message || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.requestId = error.request_id || requestId || null;
    this.details = error.details || [];
  }
}

// One API call at a time, answered in the order they were made: a refresh that began before an
// action cannot land after the action's answer and show the task as it was before it.
let pending = Promise.resolve();
function api(...call) {
  const answer = pending.then(() => send(...call));
  pending = answer.catch(() => {});
  return answer;
}

async function send(method, kind, route, params = {}, body = undefined) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(name, String(value));
  }
  const headers = { "X-Console-Token": TOKEN };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/internal/${kind}-tasks/${route}?${query}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 300) };
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("x-amzn-RequestId"));
  return data;
}

// -- what the page shows -------------------------------------------------------------------------

const state = {
  kind: "all",
  status: "",
  cursors: [{ upsertion: 0, deletion: 0 }], // the offsets per kind where each page starts
  page: 0,
  hasOlder: false,
  selected: null, // {kind, id}
  failuresOffset: 0,
  errorFrom: null, // "refresh" errors clear themselves once a refresh succeeds
};

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function formatCount(n) {
  return n.toLocaleString("en-US");
}

function plural(n, noun) {
  return `${formatCount(n)} ${noun}${n === 1 ? "" : "s"}`;
}

function formatTime(iso) {
  return iso.replace("T", " ").replace("Z", " UTC");
}

function progressBar(progress) {
  const { total, succeeded, failed } = progress;
  const bar = element("div", {
    class: "bar",
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": String(total),
    "aria-valuenow": String(succeeded + failed),
  });
  const ok = element("span", { class: "succeeded" });
  const bad = element("span", { class: "failed" });
  // CSSOM, not style attributes: the page's Content-Security-Policy allows no inline style.
  ok.style.width = `${total ? (100 * succeeded) / total : 0}%`;
  bad.style.width = `${total ? (100 * failed) / total : 0}%`;
  bar.append(ok, bad);
  const numbers = element(
    "span",
    { class: "numbers" },
    `${formatCount(succeeded + failed)}/${formatCount(total)}` + (failed ? ` · ${formatCount(failed)} failed` : ""),
  );
  return element("div", { class: "progress" }, bar, numbers);
}

function statusBadge(status) {
  return element("span", { class: `status ${status}` }, status);
}

function showError(error, from) {
  $("error-title").textContent = error.status ? `Error ${error.status}${error.code ? ` ${error.code}` : ""}:` : "Error:";
  $("error-message").textContent = error.message;
  const meta = [];
  for (const d of error.details || []) meta.push(`${d.field}: ${d.reason}`);
  if (error.requestId) meta.push(`request id ${error.requestId}`);
  $("error-meta").textContent = meta.join(" · ");
  $("error").hidden = false;
  state.errorFrom = from;
}

function clearError() {
  $("error").hidden = true;
  state.errorFrom = null;
}

// -- the task list: both kinds merged newest first, paged by an offset per kind ------------------

async function loadTasks() {
  const cursor = state.cursors[state.page];
  const kinds = state.kind === "all" ? KINDS : [state.kind];
  const lists = await Promise.all(
    kinds.map(async (kind) => ({
      kind,
      list: await api("GET", kind, "list", { offset: cursor[kind], limit: PAGE_SIZE, status: state.status }),
    })),
  );
  const merged = lists.flatMap(({ kind, list }) => list.tasks.map((task) => ({ kind, task })));
  merged.sort((a, b) => b.task.created_at.localeCompare(a.task.created_at) || a.task.id.localeCompare(b.task.id));
  const rows = merged.slice(0, PAGE_SIZE);
  const next = { ...cursor };
  let older = false;
  for (const { kind, list } of lists) {
    const shown = rows.filter((row) => row.kind === kind).length;
    next[kind] = cursor[kind] + shown;
    if (shown < list.tasks.length || list.next_offset !== null) older = true;
  }
  state.cursors[state.page + 1] = next;
  state.hasOlder = older;
  renderTasks(rows);
}

function renderTasks(rows) {
  const body = $("task-table").tBodies[0];
  body.replaceChildren(
    ...rows.map(({ kind, task }) => {
      const row = element(
        "tr",
        { "data-kind": kind, "data-task-id": task.id, "data-status": task.status, tabindex: "0" },
        element("td", {}, kind),
        element("td", {}, element("code", {}, task.id)),
        element("td", {}, task.embedding_model_id),
        element("td", {}, statusBadge(task.status)),
        element("td", {}, progressBar(task.progress)),
        element("td", {}, String(task.attempt)),
        element("td", {}, formatTime(task.updated_at)),
      );
      if (state.selected && state.selected.kind === kind && state.selected.id === task.id) row.classList.add("selected");
      return row;
    }),
  );
  $("no-tasks").hidden = rows.length > 0;
  $("newer").disabled = state.page === 0;
  $("older").disabled = !state.hasOlder;
  $("page-info").textContent = `page ${state.page + 1}`;
  $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// -- one task: its details, its failures a page at a time, and its transitions -------------------

let shownTask = null;

async function loadDetail() {
  if (!state.selected) return;
  const { kind, id } = state.selected;
  const task = await api("GET", kind, "info", {
    task_id: id,
    failures_offset: state.failuresOffset,
    failures_limit: FAILURES_PAGE_SIZE,
  });
  renderDetail(kind, task);
}

function renderDetail(kind, task) {
  shownTask = { kind, task };
  $("detail").hidden = false;
  $("detail").dataset.status = task.status;
  $("detail-kind").textContent = kind[0].toUpperCase() + kind.slice(1);
  $("detail-id").textContent = task.id;
  $("detail-status").replaceWith(Object.assign(statusBadge(task.status), { id: "detail-status" }));
  $("detail-model").textContent = task.embedding_model_id;
  $("detail-attempt").textContent = String(task.attempt);
  const p = task.progress;
  $("detail-progress").replaceChildren(
    progressBar(p),
    element(
      "span",
      { class: "meta" },
      ` ${formatCount(p.succeeded)} succeeded${p.superseded ? ` (${formatCount(p.superseded)} superseded by newer tasks)` : ""}, ` +
        `${formatCount(p.failed)} failed, ${formatCount(p.pending)} pending`,
    ),
  );
  $("detail-created").textContent = formatTime(task.created_at);
  $("detail-updated").textContent = formatTime(task.updated_at);
  $("detail-error").textContent = task.error || "—";
  $("cancel-task").disabled = !CANCELABLE.has(task.status);
  $("restart-all").disabled = !RESTARTABLE.has(task.status);
  $("restart-failed").disabled = !RESTARTABLE.has(task.status) || p.succeeded >= p.total;

  const failures = task[FAILURES_FIELD[kind]];
  $("failure-table").tBodies[0].replaceChildren(
    ...failures.map((f) =>
      element("tr", {}, element("td", {}, element("code", {}, f.object_id)), element("td", {}, f.detail)),
    ),
  );
  const first = state.failuresOffset + 1;
  const last = state.failuresOffset + failures.length;
  $("failures-info").textContent = failures.length
    ? `${formatCount(first)}–${formatCount(last)} of ${formatCount(p.failed)}`
    : p.failed
      ? `none on this page, ${formatCount(p.failed)} in all`
      : "none";
  $("failures-previous").disabled = state.failuresOffset === 0;
  $("failures-next").disabled = task.failures_next_offset === null;
  for (const row of $("task-table").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.kind === kind && row.dataset.taskId === task.id);
  }
}

function select(kind, id) {
  state.selected = { kind, id };
  state.failuresOffset = 0;
  run(loadDetail, "action");
}

function confirmed(text, label) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = label;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

async function transition(route, params, question, label) {
  if (!shownTask) return;
  const { kind, task } = shownTask;
  if (!(await confirmed(question(task), label))) return;
  // The attempt the operator saw: the service acts on it at most once, so the console's retries
  // are safe, and a task restarted meanwhile is refused rather than acted on blind.
  const changed = await api("PUT", kind, route, { task_id: task.id, attempt: task.attempt, ...params });
  state.failuresOffset = 0;
  renderDetail(kind, changed);
  await loadTasks();
}

// -- creating a task from JSON Lines ------------------------------------------------------------

function parseLines(kind, text) {
  const values = [];
  text.split("\n").forEach((line, index) => {
    if (!line.trim()) return;
    let value;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new Error(`line ${index + 1} is not JSON: ${e.message}`);
    }
    if (kind === "deletion" && value && typeof value === "object" && typeof value.object_id === "string") {
      value = value.object_id;
    }
    const ok = kind === "upsertion" ? value && typeof value === "object" && !Array.isArray(value) : typeof value === "string";
    if (!ok) {
      const expected = kind === "upsertion" ? 'an item, {"object_id": ..., "payload": {...}}' : 'an object id, "doc-1"';
      throw new Error(`line ${index + 1} is not ${expected}`);
    }
    values.push(value);
  });
  if (!values.length) throw new Error("no lines to submit");
  return values;
}

function newTaskId() {
  const random = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  return `console-${random}`;
}

async function createTask(event) {
  event.preventDefault();
  const error = $("create-error");
  error.hidden = true;
  const kind = $("create-kind").value;
  const model = $("create-model").value.trim();
  let values;
  try {
    values = parseLines(kind, $("create-lines").value);
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
    return;
  }
  // Chosen here when left empty, so that the console server may retry the create safely.
  const taskId = $("create-task-id").value.trim() || newTaskId();
  const body = { embedding_model_id: model, task_id: taskId, [kind === "upsertion" ? "items" : "object_ids"]: values };
  $("create-submit").disabled = true;
  try {
    const task = await api("POST", kind, "run", {}, body);
    localStorage.setItem("vector-tasks-model", model);
    $("create").close();
    $("create-form").reset();
    state.page = 0;
    state.selected = { kind, id: task.id };
    state.failuresOffset = 0;
    renderDetail(kind, task);
    await loadTasks();
  } catch (e) {
    const meta = [e.code, e.requestId && `request id ${e.requestId}`].filter(Boolean).join(", ");
    const details = (e.details || []).map((d) => `${d.field}: ${d.reason}`).join("; ");
    error.textContent = `${e.message}${details ? ` (${details})` : ""}${meta ? ` [${meta}]` : ""}`;
    error.hidden = false;
  } finally {
    $("create-submit").disabled = false;
  }
}

// -- wiring -------------------------------------------------------------------------------------

async function run(action, from) {
  try {
    await action();
    if (from === "refresh" && state.errorFrom === "refresh") clearError();
  } catch (e) {
    if (e instanceof ApiError || e instanceof TypeError) showError(e, from);
    else throw e;
  }
}

let refreshing = false;
async function refresh() {
  if (refreshing || document.hidden) return;
  refreshing = true;
  try {
    await run(async () => {
      await loadTasks();
      await loadDetail();
    }, "refresh");
  } finally {
    refreshing = false;
  }
}

function restartFilters() {
  state.kind = $("kind-filter").value;
  state.status = $("status-filter").value;
  state.cursors = [{ upsertion: 0, deletion: 0 }];
  state.page = 0;
  run(loadTasks, "action");
}

document.addEventListener("DOMContentLoaded", () => {
  $("kind-filter").addEventListener("change", restartFilters);
  $("status-filter").addEventListener("change", restartFilters);
  $("newer").addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    run(loadTasks, "action");
  });
  $("older").addEventListener("click", () => {
    state.page += 1;
    run(loadTasks, "action");
  });
  $("task-table").tBodies[0].addEventListener("click", (event) => {
    const row = event.target.closest("tr");
    if (row) select(row.dataset.kind, row.dataset.taskId);
  });
  $("task-table").tBodies[0].addEventListener("keydown", (event) => {
    const row = event.target.closest("tr");
    if (row && event.key === "Enter") select(row.dataset.kind, row.dataset.taskId);
  });
  $("failures-previous").addEventListener("click", () => {
    state.failuresOffset = Math.max(0, state.failuresOffset - FAILURES_PAGE_SIZE);
    run(loadDetail, "action");
  });
  $("failures-next").addEventListener("click", () => {
    if (shownTask && shownTask.task.failures_next_offset !== null) {
      state.failuresOffset = shownTask.task.failures_next_offset;
      run(loadDetail, "action");
    }
  });
  $("close-detail").addEventListener("click", () => {
    state.selected = null;
    shownTask = null;
    $("detail").hidden = true;
  });
  $("cancel-task").addEventListener("click", () =>
    run(
      () =>
        transition(
          "cancel",
          {},
          (t) => `Cancel ${shownTask.kind} task ${t.id}? Workers finish the chunk under way and take nothing more of it.`,
          "Cancel task",
        ),
      "action",
    ),
  );
  $("restart-all").addEventListener("click", () =>
    run(
      () =>
        transition(
          "restart",
          { scope: "all" },
          (t) => `Restart ${shownTask.kind} task ${t.id} as attempt ${t.attempt + 1}, all its items again?`,
          "Restart all",
        ),
      "action",
    ),
  );
  $("restart-failed").addEventListener("click", () =>
    run(
      () =>
        transition(
          "restart",
          { scope: "failed" },
          (t) =>
            `Restart ${shownTask.kind} task ${t.id} as attempt ${t.attempt + 1}, only the ` +
            `${plural(t.progress.total - t.progress.succeeded, "item")} that did not succeed?`,
          "Restart failed",
        ),
      "action",
    ),
  );
  $("error-dismiss").addEventListener("click", clearError);
  $("new-task").addEventListener("click", () => {
    $("create-model").value ||= localStorage.getItem("vector-tasks-model") || "";
    $("create-error").hidden = true;
    $("create").showModal();
  });
  $("create-close").addEventListener("click", () => $("create").close());
  $("create-form").addEventListener("submit", createTask);

  run(loadTasks, "refresh");
  setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", refresh);
});
