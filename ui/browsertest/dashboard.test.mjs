// Browser tests of the Fanout dashboard. e2e/ui_browser_test.go starts the
// real binary with a SQLite store and echo targets and runs this file
// with node --test; the environment names every address and token.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this suite through go test ./e2e -run TestDashboardInBrowser`);
  return v;
};
const UI = env("FANOUT_UI_URL");
const ADMIN = env("FANOUT_ADMIN_URL");
const DATA = env("FANOUT_DATA_URL");
const CONTROL = env("FANOUT_CONTROL_URL");
const SHOTS = env("FANOUT_UI_SCREENSHOTS");
const T = {
  admin: env("FANOUT_ADMIN_TOKEN"),
  acme: env("FANOUT_ACME_TOKEN"),
  beta: env("FANOUT_BETA_TOKEN"),
};

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: env("FANOUT_CHROMIUM"),
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic"],
  });
});
after(async () => { await browser?.close(); });

// newPage opens a page in a fresh context (its own cookies).
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

async function signIn(page, token) {
  await page.goto(UI + "login");
  await page.getByLabel("Admin token or tenant admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function send(route, body, headers = {}) {
  const res = await fetch(DATA + route, {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", ...headers },
  });
  const text = await res.text();
  assert.ok(res.status === 202 || res.status === 200, `${route}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function api(method, p, token, body) {
  const res = await fetch(ADMIN + p, {
    method, headers: { Authorization: "Bearer " + token, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

// until polls cond (an async function) every 100ms until it is truthy.
async function until(what, cond, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function deadTo(target, token = T.admin) {
  const r = await api("GET", `/v1/messages?target=${target}&state=dead&limit=1000`, token);
  assert.equal(r.status, 200);
  return r.json.messages;
}

test("a bad token is refused with a clear message", async () => {
  const page = await newPage();
  await signIn(page, "not-the-token");
  await page.getByText("This token is not accepted").waitFor();
  assert.ok(page.url().endsWith("/ui/login"), page.url());
  assert.equal((await page.context().cookies()).length, 0, "no session cookie");
  await shot(page, "01-sign-in-bad-token.png");
  await page.context().close();
});

let orderIDs = [];

test("the admin signs in; the overview shows every route and its numbers change after traffic", async () => {
  const page = await newPage();
  await signIn(page, T.admin);
  await page.waitForURL(UI);
  for (const route of ["orders", "lookup", "partner", "pipeline"]) {
    await page.locator(`tr[data-route="${route}"]`).waitFor();
  }
  for (const target of ["billing", "crm"]) {
    await page.locator(`tr[data-target="${target}"]`).waitFor();
  }
  const cookie = (await page.context().cookies())[0];
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.ok(!cookie.value.includes(T.admin));
  const requests = page.locator('[data-stat="routes.lookup.requests"]');
  const attempts = page.locator('[data-stat="targets.billing.attempts"]');
  const before = { requests: await requests.textContent(), attempts: await attempts.textContent() };
  await shot(page, "02-overview-before-traffic.png");

  for (let i = 0; i < 5; i++) {
    orderIDs.push((await send("/orders", { order: i, item: "book" })).id);
    await send("/lookup", { q: i });
  }
  // The page refreshes by itself: no reload here.
  await until("the lookup route's request count to change", async () => (await requests.textContent()) !== before.requests);
  await until("billing's attempt count to change", async () => (await attempts.textContent()) !== before.attempts);
  assert.equal(await requests.textContent(), String(Number(before.requests) + 5));
  // crm answers 503: its deliveries die after two attempts.
  await until("five dead deliveries to crm", async () => (await deadTo("crm")).length === 5);
  await until("the overview to show them", async () =>
    (await page.locator('[data-stat="targets.crm.dead"]').textContent()).trim() === "5");
  // The charts plot the rate between refreshes.
  await page.locator('svg[data-chart="routes.lookup"] polyline').waitFor({ state: "attached" });
  assert.match(await page.locator('svg[data-chart="routes.lookup"]').getAttribute("aria-label"), /Requests per second of lookup: [0-9.]+ per second now/);
  // Two more bursts, a refresh apart, give the charts a shape.
  const updates = async () => Number(await page.locator("#refresh").getAttribute("data-updates"));
  for (const n of [3, 8]) {
    const seen = await updates();
    for (let i = 0; i < n; i++) await send("/lookup", { q: i });
    await until("the next refresh", async () => (await updates()) > seen + 1);
  }
  assert.match(await page.locator('svg[data-chart="routes.lookup"]').getAttribute("aria-label"), /over the last [3-9] refreshes/);
  await shot(page, "03-overview-after-traffic.png");
  await page.emulateMedia({ colorScheme: "dark" });
  await shot(page, "03b-overview-dark.png");
  await page.context().close();
});

test("the charts over time show each route and target, swap in fresh copies by themselves, and have tables", async () => {
  const page = await newPage();
  await signIn(page, T.admin);
  await page.waitForURL(UI);
  await page.getByRole("link", { name: "24h" }).click();
  await page.waitForURL(/window=24h/);
  await page.getByTestId("charts-range").getByText("Window 24h in steps of 15m").waitFor();
  for (const key of ["routes.orders", "routes.lookup", "targets.billing", "targets.crm"]) {
    await page.locator(`figure[data-series="${key}"]`).waitFor();
  }
  const label = () => page.locator('figure[data-series="routes.lookup"] svg[data-chart-title="Requests per second"]').getAttribute("aria-label");
  assert.match(await label(), /Requests per second of lookup over the last 24h \(15m steps/);
  // Traffic, then the section is replaced without a reload.
  const before = await page.evaluate(() => document.getElementById("charts").dataset.updates || "0");
  for (let i = 0; i < 4; i++) await send("/lookup", { q: "chart" + i });
  await until("the charts to be swapped in again", async () =>
    (await page.evaluate(() => document.getElementById("charts").dataset.updates || "0")) !== before, 30000);
  assert.match(await label(), /latest [0-9.]+, highest [0-9.]+/);
  assert.ok((await page.locator('figure[data-series="routes.lookup"] polyline').count()) > 0);
  // The table alternative opens with the keyboard and stays open across a refresh.
  const summary = page.locator('figure[data-series="routes.lookup"] summary');
  await summary.focus();
  await page.keyboard.press("Enter");
  const table = page.locator('figure[data-series="routes.lookup"] details table');
  await table.waitFor();
  assert.ok((await table.locator("tbody tr").count()) >= 1);
  await page.locator('figure[data-series="targets.crm"] svg[data-chart-title="Backlog"]').waitFor();
  await page.locator('section[aria-labelledby="charts-title"]').screenshot({ path: path.join(SHOTS, "03c-overview-charts-24h.png") });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.locator('section[aria-labelledby="charts-title"]').screenshot({ path: path.join(SHOTS, "03d-overview-charts-24h-dark.png") });
  const seen = await page.evaluate(() => document.getElementById("charts").dataset.updates);
  await until("one more refresh", async () =>
    (await page.evaluate(() => document.getElementById("charts").dataset.updates)) !== seen, 30000);
  assert.equal(await page.locator('figure[data-series="routes.lookup"] details').getAttribute("open"), "");
  await page.context().close();
});

test("messages filter by state and route; a dead message shows its failed attempts, and replays once the target is fixed", async () => {
  const page = await newPage();
  await signIn(page, T.admin);
  await page.goto(UI + "messages");
  await page.getByLabel("State").selectOption("dead");
  await page.getByLabel("Route").fill("orders");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/state=dead/);
  const rows = page.locator('table[data-testid="messages"] tbody tr[data-id]');
  assert.equal(await rows.count(), 5);
  for (const id of orderIDs) await page.locator(`tr[data-id="${id}"]`).waitFor();
  for (let i = 0; i < 5; i++) {
    assert.match(await rows.nth(i).textContent(), /crm: dead/);
  }
  await shot(page, "04-messages-filtered-dead.png");

  // The lookup route's messages are not durable; a route filter of
  // another route shows none of the orders.
  await page.goto(UI + "messages?route=lookup");
  assert.equal(await page.locator("tr[data-id]").count(), 0);

  const id = orderIDs[0];
  await page.goto(UI + "messages?state=dead&route=orders");
  await page.locator(`tr[data-id="${id}"] a`).click();
  await page.waitForURL(new RegExp(id));
  const crm = page.locator('article.delivery[data-target="crm"]');
  assert.equal(await crm.getAttribute("data-state"), "dead");
  const failed = crm.locator('details[data-failed="true"]');
  assert.equal(await failed.count(), 2, "two failed attempts");
  await failed.first().locator("summary").click();
  await failed.first().getByText("crm is down for maintenance").waitFor();
  assert.match(await failed.first().textContent(), /status 503/);
  await page.getByTestId("body").getByText('"item": "book"').waitFor();
  await shot(page, "05-message-dead-attempts.png");

  const fix = await fetch(CONTROL + "/crm/fix", { method: "POST" });
  assert.equal(fix.status, 204);
  await crm.getByRole("button", { name: "Replay to crm" }).click();
  await page.getByRole("status").getByText(`Replayed the delivery of message ${id} to crm: 1 delivery due again.`).waitFor();
  await until("the replayed delivery to succeed", async () => {
    await page.reload();
    return (await page.locator('article.delivery[data-target="crm"]').getAttribute("data-state")) === "succeeded";
  });
  assert.equal(await page.locator('article.delivery[data-target="crm"] details[data-testid="attempt"]').count(), 3);
  await shot(page, "06-message-replayed-succeeded.png");
  await page.context().close();
});

test("bulk replay of a target's dead letters shows how many first", async () => {
  const page = await newPage();
  await signIn(page, T.admin);
  await page.goto(UI + "dead");
  await page.locator('table[data-testid="dead-targets"]').getByRole("link", { name: "crm" }).click();
  await page.waitForURL(/target=crm/);
  assert.equal(await page.locator("tr[data-id]").count(), 4);
  await page.getByTestId("preview-replay").click();
  await page.getByTestId("replay-count").waitFor();
  assert.match(await page.getByTestId("replay-count").textContent(), /This replays 4 dead deliveries to crm/);
  await shot(page, "07-dead-letters-replay-preview.png");
  await page.getByTestId("confirm-replay").click();
  await page.getByRole("status").getByText("Replayed 4 dead deliveries to crm.").waitFor();
  await until("no dead delivery left to crm", async () => (await deadTo("crm")).length === 0);
  await until("every order delivered to crm", async () => {
    for (const id of orderIDs) {
      const m = await api("GET", "/v1/messages/" + id, T.admin);
      if (m.json.deliveries.some((d) => d.state !== "succeeded")) return false;
    }
    return true;
  });
  await shot(page, "08-dead-letters-after-replay.png");
  await page.context().close();
});

test("the steps of a steps route show as a graph", async () => {
  const { id } = await send("/pipeline", { order: 9 });
  await until("every step to settle", async () => {
    const m = await api("GET", "/v1/messages/" + id, T.admin);
    return m.json.deliveries.every((d) => d.state === "succeeded");
  });
  const page = await newPage();
  await signIn(page, T.admin);
  await page.goto(UI + "messages/" + id);
  const graph = page.locator("svg.steps");
  await graph.waitFor();
  assert.equal(await graph.locator("g.node").count(), 3);
  assert.equal(await graph.locator("line.edge").count(), 2);
  assert.match(await graph.getAttribute("aria-label"), /charge succeeded/);
  await shot(page, "09-message-steps-graph.png");
  await page.context().close();
});

test("a tenant's token sees only its tenant's messages and cannot replay another's", async () => {
  await fetch(CONTROL + "/crm/break", { method: "POST" });
  const acme = (await send("/partner", { from: "acme" }, { "X-Api-Key": env("FANOUT_ACME_KEY") })).id;
  const beta = (await send("/partner", { from: "beta" }, { "X-Api-Key": env("FANOUT_BETA_KEY") })).id;
  await until("both partner messages dead", async () => {
    const ids = (await deadTo("crm")).map((m) => m.id);
    return ids.includes(acme) && ids.includes(beta);
  });

  const page = await newPage();
  await signIn(page, T.acme);
  await page.waitForURL(UI + "messages");
  await page.getByTestId("scope").getByText("acme").waitFor();
  await page.locator(`tr[data-id="${acme}"]`).waitFor();
  assert.equal(await page.locator(`tr[data-id="${beta}"]`).count(), 0);
  for (const row of await page.locator("tr[data-id]").all()) {
    assert.match(await row.textContent(), /acme/);
  }
  assert.equal(await page.getByRole("link", { name: "Overview" }).count(), 0, "no operator overview");
  await shot(page, "10-tenant-messages.png");

  const res = await page.goto(UI + "messages/" + beta);
  assert.equal(res.status(), 404);
  await page.getByTestId("error").getByText(`no message "${beta}"`).waitFor();

  // The same through the admin API: the tenant token cannot see or
  // replay beta's message, and lists only acme's.
  const direct = await api("POST", `/v1/messages/${beta}/replay`, T.acme);
  assert.equal(direct.status, 404);
  assert.equal((await api("GET", `/v1/messages/${beta}`, T.acme)).status, 404);
  const listed = await api("GET", "/v1/messages", T.acme);
  assert.ok(listed.json.messages.every((m) => m.tenant === "acme"));
  assert.ok(listed.json.messages.some((m) => m.id === acme));

  // Its own message it can replay from the page.
  await page.goto(UI + "messages/" + acme);
  await page.getByTestId("replay-message").click();
  await page.getByRole("status").getByText(`Replayed message ${acme}`).waitFor();
  const after = await api("GET", `/v1/messages/${beta}`, T.admin);
  assert.equal(after.json.deliveries[0].state, "dead", "beta's message untouched");
  await page.context().close();
});

test("the keyboard alone signs in and reaches the content; focus is visible", async () => {
  const page = await newPage();
  await page.goto(UI + "login");
  // The token field has focus on arrival.
  await page.keyboard.type(T.admin);
  await page.keyboard.press("Enter");
  await page.waitForURL(UI);
  await page.keyboard.press("Tab");
  const skip = await page.evaluate(() => ({
    text: document.activeElement.textContent,
    outline: getComputedStyle(document.activeElement).outlineStyle,
  }));
  assert.equal(skip.text, "Skip to content");
  assert.equal(skip.outline, "solid");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");
  await page.context().close();
});
