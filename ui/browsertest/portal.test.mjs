// Browser tests of the developer portal and the operator's Access page.
// e2e/ui_browser_test.go runs this file after dashboard.test.mjs against
// the same real binary; route members needs an approved subscription.
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
const DATA = env("FANOUT_DATA_URL");
const SHOTS = env("FANOUT_UI_SCREENSHOTS");
const T = { admin: env("FANOUT_ADMIN_TOKEN"), acme: env("FANOUT_ACME_TOKEN"), beta: env("FANOUT_BETA_TOKEN") };

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

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(UI).origin });
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
  await page.waitForURL((u) => !u.pathname.endsWith("/login"));
}

// call sends one request to route members with key; it returns the
// status and the error code.
async function call(key) {
  const res = await fetch(DATA + "/members", {
    method: "POST", body: JSON.stringify({ member: "ada" }),
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + key },
  });
  const text = await res.text();
  let code = "";
  try { code = JSON.parse(text).error?.code ?? ""; } catch { /* not JSON */ }
  return { status: res.status, code };
}

async function until(what, cond, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("a tenant goes from nothing to a working call through the portal; the operator approves and can undo it", async () => {
  const tenant = await newPage();
  await signIn(tenant, T.acme);
  await tenant.getByRole("link", { name: "Portal" }).click();
  await tenant.getByRole("heading", { name: "Developer portal" }).waitFor();
  const members = tenant.locator('table[data-testid="portal-routes"] tr[data-route="members"]');
  await members.waitFor();
  assert.match(await members.textContent(), /subscription \(approval\)/);
  assert.equal(await tenant.locator('tr[data-route="vip"]').count(), 0, "a route of another tenant is not offered");
  await shot(tenant, "20-portal-routes.png");

  // A key, shown once, copied with the button.
  await tenant.getByLabel("Name").fill("browser");
  await tenant.getByRole("button", { name: "Create key" }).click();
  const shown = tenant.locator('[data-testid="new-key-value"]');
  await shown.waitFor();
  const key = await shown.inputValue();
  assert.match(key, /^fo_/);
  await tenant.getByRole("button", { name: "Copy" }).click();
  await tenant.getByText("Copied.").waitFor();
  assert.equal(await tenant.evaluate(() => navigator.clipboard.readText()), key);
  await shot(tenant, "21-portal-new-key.png");
  await tenant.reload();
  assert.ok(!(await tenant.content()).includes(key), "the key is not shown again");

  // The key authenticates, but the route needs a subscription.
  assert.deepEqual(await call(key), { status: 403, code: "subscription_required" });

  // Ask, with the keyboard: type the note and press Enter.
  await tenant.getByLabel("Why you need members").fill("our member sync");
  await tenant.getByLabel("Why you need members").press("Enter");
  await tenant.getByText("Access to members requested").waitFor();
  assert.equal((await members.locator('[data-testid="access-state"]').textContent()).trim(), "pending");
  await shot(tenant, "22-portal-requested.png");
  assert.deepEqual(await call(key), { status: 403, code: "subscription_required" }, "pending is not active");

  // The operator approves it from the Access page, with the keyboard too.
  const op = await newPage();
  await signIn(op, T.admin);
  await op.getByRole("link", { name: "Access" }).click();
  await op.getByLabel("State").selectOption("pending");
  await op.getByRole("button", { name: "Filter" }).click();
  const row = op.locator('tr[data-tenant="acme"][data-route="members"]');
  await row.waitFor();
  assert.match(await row.textContent(), /our member sync/);
  await shot(op, "23-access-pending.png");
  await row.getByLabel("Reason").fill("welcome");
  await row.getByLabel("Reason").press("Enter"); // the first button: Approve
  await op.getByText("Subscription of acme to members is now active.").waitFor();
  await until("the approval to hold", async () => (await call(key)).status === 202);

  // The tenant sees it, and the audit log names who did what.
  await tenant.reload();
  assert.match(await members.locator('[data-testid="access-state"]').textContent(), /active/);
  assert.match(await tenant.locator('[data-testid="audit"]').textContent(), /admin\s*subscription\.approve/);
  await tenant.emulateMedia({ colorScheme: "dark" });
  await shot(tenant, "24-portal-active-dark.png");
  await tenant.emulateMedia({ colorScheme: "light" });

  // Undo: the operator revokes; the next calls are refused.
  await op.getByLabel("State").selectOption("active");
  await op.getByRole("button", { name: "Filter" }).click();
  await row.getByLabel("Reason").fill("unpaid invoice");
  await row.getByRole("button", { name: "Revoke" }).click();
  await op.getByText("Subscription of acme to members is now revoked.").waitFor();
  await until("the revocation to hold", async () => (await call(key)).code === "subscription_required");
  await op.getByLabel("State").selectOption("");
  await op.getByRole("button", { name: "Filter" }).click();
  await shot(op, "25-access-audit.png");

  // The tenant revokes its key: 401 from then on.
  await tenant.reload();
  await tenant.getByRole("button", { name: "Revoke key browser" }).click();
  await tenant.getByText("revoked: it is refused from its next request").waitFor();
  await until("the key revocation to hold", async () => (await call(key)).status === 401);

  // Another tenant sees none of it.
  const beta = await newPage();
  await signIn(beta, T.beta);
  await beta.goto(UI + "access");
  const body = await beta.content();
  assert.ok(!body.includes("our member sync"), "beta does not see acme's request");
  assert.ok(!body.includes("browser"), "beta does not see acme's key");
  for (const p of [tenant, op, beta]) await p.context().close();
});
