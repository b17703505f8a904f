// Drives the operator console in Debian's chromium through playwright-core: one scenario per
// run, named by the first argument; tests/browser/test_console.py runs each against the local
// stack. Every wait is bounded; a failure prints what was awaited and saves a screenshot.
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const CONSOLE_URL = process.env.CONSOLE_URL;
const ARGS = JSON.parse(process.env.SCENARIO_ARGS || "{}");
const ARTIFACTS = process.env.ARTIFACTS || tmpdir();
const WAIT_MS = 90_000;
// The flags this machine's closed network needs (no background connections, nothing fetched);
// launch() gives the browser a new empty profile of its own and removes it afterwards.
const FLAGS = [
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const row = (page, id) => page.locator(`#task-table tbody tr[data-task-id="${id}"]`);

function step(text) {
  console.log(`step: ${text}`);
}

async function until(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 100 });
  } catch (error) {
    throw new Error(`timed out waiting for ${what}: ${error.message.split("\n")[0]}`);
  }
}

function rowStatus(page, id, status) {
  return until(
    page,
    `task ${id} to show ${status}`,
    ([taskId, wanted]) => document.querySelector(`#task-table tbody tr[data-task-id="${taskId}"]`)?.dataset.status === wanted,
    [id, status],
  );
}

function detailShows(page, id, status, attempt) {
  return until(
    page,
    `the detail of ${id} to show ${status}, attempt ${attempt}`,
    ([taskId, wanted, n]) =>
      document.getElementById("detail-id").textContent === taskId &&
      document.getElementById("detail").dataset.status === wanted &&
      document.getElementById("detail-attempt").textContent === String(n),
    [id, status, attempt],
  );
}

async function confirm(page, expected, choice) {
  const dialog = page.locator("#confirm");
  await dialog.waitFor({ state: "visible", timeout: WAIT_MS });
  const text = await page.locator("#confirm-text").textContent();
  assert.match(text, expected);
  await page.locator(choice === "ok" ? "#confirm-ok" : "#confirm button[value=back]").click();
  await dialog.waitFor({ state: "hidden", timeout: WAIT_MS });
}

async function create(page, kind, model, taskId, lines) {
  await page.locator("#new-task").click();
  await page.locator("#create").waitFor({ state: "visible" });
  await page.locator("#create-kind").selectOption(kind);
  await page.locator("#create-model").fill(model);
  await page.locator("#create-task-id").fill(taskId);
  await page.locator("#create-lines").fill(lines.join("\n"));
  await page.locator("#create-submit").click();
}

// -- scenarios ---------------------------------------------------------------------------------

const scenarios = {
  // Create a task in the form, watch it finish, page through its failures, restart it both ways;
  // a refused create shows the service's message; the filters; a deletion task beside it.
  async lifecycle(page) {
    const { task_id: id, deletion_id: deletionId, model } = ARGS;
    step("create an upsertion task of 100 items, 60 without payload");
    const lines = [];
    for (let i = 0; i < 100; i++) {
      const item = { object_id: `${id}-${String(i).padStart(3, "0")}` };
      if (i >= 60) item.payload = { text: `browser item ${i}` };
      lines.push(JSON.stringify(item));
    }
    await create(page, "upsertion", model, id, lines);
    await page.locator("#create").waitFor({ state: "hidden", timeout: WAIT_MS });
    assert.equal(await page.locator("#detail-id").textContent(), id);

    step("watch it finish: the list and the detail follow without a reload");
    await rowStatus(page, id, "done");
    await detailShows(page, id, "done", 1);
    assert.equal(await row(page, id).locator(".numbers").textContent(), "100/100 · 60 failed");
    assert.equal(await row(page, id).locator(".bar").getAttribute("aria-valuenow"), "100");

    step("its failures, a page of 50 at a time");
    const failures = page.locator("#failure-table tbody tr");
    await until(page, "the first page of failures", () => document.querySelectorAll("#failure-table tbody tr").length === 50);
    assert.equal(await page.locator("#failures-info").textContent(), "1–50 of 60");
    assert.match(await failures.first().textContent(), /Item has no payload/);
    assert.equal(await page.locator("#failures-previous").isDisabled(), true);
    await page.locator("#failures-next").click();
    await until(page, "the second page", () => document.getElementById("failures-info").textContent === "51–60 of 60");
    assert.equal(await failures.count(), 10);
    assert.equal(await page.locator("#failures-next").isDisabled(), true);
    await page.locator("#failures-previous").click();
    await until(page, "the first page again", () => document.getElementById("failures-info").textContent === "1–50 of 60");
    assert.equal(await page.locator("#cancel-task").isDisabled(), true); // done: nothing to cancel

    step("restart all, confirmed: attempt 2 runs every item again");
    await page.locator("#restart-all").click();
    await confirm(page, new RegExp(`^Restart upsertion task ${id} as attempt 2, all its items again\\?$`), "ok");
    await detailShows(page, id, "done", 2);
    step("restart failed, confirmed: attempt 3 runs the 60 again, which fail again");
    await page.locator("#restart-failed").click();
    await confirm(page, /as attempt 3, only the 60 items that did not succeed\?$/, "ok");
    await detailShows(page, id, "failed", 3);
    assert.match(await page.locator("#detail-error").textContent(), /All 60 items failed/);

    step("a create the service refuses shows its message and request id");
    await create(page, "upsertion", "no-such-model", `${id}-refused`, ['{"object_id": "a", "payload": {"text": "x"}}']);
    const refusal = page.locator("#create-error");
    await refusal.waitFor({ state: "visible", timeout: WAIT_MS });
    const refused = await refusal.textContent();
    assert.match(refused, /no-such-model/);
    assert.match(refused, /\[unknown_embedding_model, request id [0-9a-f-]{36}\]$/);
    step("a line that is not JSON is named before anything is sent");
    await page.locator("#create-lines").fill('{"object_id": "a"}\nnot json');
    await page.locator("#create-submit").click();
    await until(page, "the line error", () => /^line 2 is not JSON/.test(document.getElementById("create-error").textContent));
    await page.locator("#create-close").click();

    step("a deletion task beside it; the kind and status filters");
    await create(page, "deletion", model, deletionId, ['"never-indexed-1"', '{"object_id": "never-indexed-2"}']);
    await page.locator("#create").waitFor({ state: "hidden", timeout: WAIT_MS });
    await rowStatus(page, deletionId, "done");
    assert.equal(await row(page, deletionId).getAttribute("data-kind"), "deletion");
    await page.locator("#kind-filter").selectOption("deletion");
    await until(page, "deletion tasks only", () => {
      const kinds = [...document.querySelectorAll("#task-table tbody tr")].map((r) => r.dataset.kind);
      return kinds.length > 0 && kinds.every((k) => k === "deletion");
    });
    await page.locator("#kind-filter").selectOption("all");
    await page.locator("#status-filter").selectOption("failed");
    await until(
      page,
      "failed tasks only, ours among them",
      (taskId) => {
        const rows = [...document.querySelectorAll("#task-table tbody tr")];
        return rows.some((r) => r.dataset.taskId === taskId) && rows.every((r) => r.dataset.status === "failed");
      },
      id,
    );
    return ["422 /api/internal/upsertion-tasks/run"]; // the refused create
  },

  // A task queued behind long ones: once the first long one's bar has been seen moving, cancel
  // it (Back first, then confirmed) while it waits, cancel the last long one (still queued or
  // under way), then restart the first one's failed items and watch it finish.
  async cancel_and_restart(page) {
    const { filler_id: filler, long_id: long, task_id: id, items } = ARGS;
    step("the long task's bar moves while the page is open");
    await row(page, filler).waitFor({ timeout: WAIT_MS });
    const bar = row(page, filler).locator(".bar");
    await until(page, "the long task to start", (taskId) => {
      const r = document.querySelector(`#task-table tbody tr[data-task-id="${taskId}"] .bar`);
      return r && Number(r.getAttribute("aria-valuenow")) > 0;
    }, filler);
    const first = Number(await bar.getAttribute("aria-valuenow"));
    await until(
      page,
      "the long task's bar to move on",
      ([taskId, seen]) => {
        const r = document.querySelector(`#task-table tbody tr[data-task-id="${taskId}"] .bar`);
        return Number(r.getAttribute("aria-valuenow")) > seen;
      },
      [filler, first],
    );

    step("cancel the waiting task: Back leaves it alone, confirming cancels it");
    await row(page, id).click();
    await until(page, "its detail", (taskId) => document.getElementById("detail-id").textContent === taskId, id);
    const status = await page.locator("#detail").getAttribute("data-status");
    assert.ok(["pending", "running"].includes(status), `expected it still waiting, it is ${status}`);
    await page.locator("#cancel-task").click();
    await confirm(page, new RegExp(`^Cancel upsertion task ${id}\\? Workers finish the chunk under way`), "back");
    assert.notEqual(await page.locator("#detail").getAttribute("data-status"), "canceled");
    await page.locator("#cancel-task").click();
    await confirm(page, /^Cancel upsertion task/, "ok");
    await detailShows(page, id, "canceled", 1);
    await rowStatus(page, id, "canceled");
    assert.equal(await page.locator("#cancel-task").isDisabled(), true);

    step("cancel the last long task too");
    await row(page, long).click();
    await until(page, "its detail", (taskId) => document.getElementById("detail-id").textContent === taskId, long);
    await page.locator("#cancel-task").click();
    await confirm(page, /^Cancel upsertion task/, "ok");
    await rowStatus(page, long, "canceled");

    step("restart the canceled task's items that did not succeed, and watch it finish");
    await row(page, id).click();
    await until(page, "its detail", (taskId) => document.getElementById("detail-id").textContent === taskId, id);
    const remaining = await page.locator("#detail-progress .numbers").textContent();
    const done = Number(remaining.split("/")[0].replaceAll(",", ""));
    await page.locator("#restart-failed").click();
    const left = (items - done).toLocaleString("en-US");
    await confirm(page, new RegExp(`as attempt 2, only the ${left} items that did not succeed\\?$`), "ok");
    await detailShows(page, id, "done", 2);
    const numbers = await page.locator("#detail-progress .numbers").textContent();
    assert.equal(numbers, `${left}/${left}`);
  },
};

// -- running one ---------------------------------------------------------------------------------

const name = process.argv[2];
const scenario = scenarios[name];
if (!scenario) {
  console.error(`no scenario ${name}; there are: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  chromiumSandbox: false,
  args: FLAGS,
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const requests = [];
const refused = []; // answers of 400 and over, as "STATUS PATH"
const pageErrors = [];
const calls = []; // the API calls, for a failure's report
page.on("request", (request) => requests.push(request.url()));
page.on("response", (response) => {
  const request = response.request();
  const path = new URL(response.url()).pathname;
  if (path.startsWith("/api/")) calls.push(`${request.method()} ${path} (${(request.postData() || "").length} B) ${response.status()}`);
  if (response.status() >= 400) refused.push(`${response.status()} ${path}`);
});
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("console", (message) => {
  // A refused fetch is logged by the browser too; `refused` holds those, checked per scenario.
  if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
    pageErrors.push(message.text());
  }
});
try {
  await page.goto(CONSOLE_URL);
  assert.equal(await page.title(), "Vector tasks console");
  const expectedRefusals = await scenario(page);
  step("everything came from the console's own server, nothing else was refused, no script error");
  const elsewhere = requests.filter((url) => !url.startsWith(`${CONSOLE_URL}/`));
  assert.deepEqual(elsewhere, []);
  assert.deepEqual(refused, expectedRefusals || []);
  assert.deepEqual(pageErrors, []);
  console.log(`passed: ${name} (${requests.length} requests)`);
} catch (error) {
  failed = true;
  const shot = join(ARTIFACTS, `console-${name}.png`);
  await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
  console.error(
    `failed: ${name}: ${error.stack || error}\nscreenshot: ${shot}\npage errors: ${pageErrors.join(" | ")}\n` +
      `last API calls:\n  ${calls.slice(-12).join("\n  ")}`,
  );
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
