// View logic of the GitOps tab: state → what is shown. Run: node --test editor_plugin/test/
const test = require("node:test");
const assert = require("node:assert/strict");
const V = require("../resources/gitops-view.js");

const NOW = Date.parse("2026-11-24T10:00:00Z");

test("live updates: the five states and the stale rule", () => {
  const base = { online: true, connected: true, lastEventAt: NOW - 1000, now: NOW, intervalSeconds: 120, paused: false };
  assert.deepEqual(V.liveUpdates(base), { key: "connected", banner: false });
  assert.deepEqual(V.liveUpdates({ ...base, paused: true }), { key: "paused", banner: false });
  assert.deepEqual(V.liveUpdates({ ...base, lastEventAt: null }), { key: "waiting", banner: false });
  assert.deepEqual(V.liveUpdates({ ...base, online: false }), { key: "offline", banner: false });
  assert.deepEqual(V.liveUpdates({ ...base, connected: false }), { key: "stale", banner: true });
  // stale: more than twice the sync interval without an event
  assert.equal(V.liveUpdates({ ...base, lastEventAt: NOW - 240 * 1000 }).key, "connected");
  assert.deepEqual(V.liveUpdates({ ...base, lastEventAt: NOW - 241 * 1000 }), { key: "stale", banner: true });
  assert.equal(V.liveUpdates({ ...base, intervalSeconds: 600, lastEventAt: NOW - 1000 * 1000 }).key, "connected");
  // offline wins over everything
  assert.equal(V.liveUpdates({ ...base, online: false, connected: false, lastEventAt: null }).key, "offline");
});

test("job rows: status keys and the retry action", () => {
  const j = V.jobView({ id: "7", trigger: "timer", status: "JOB_STATUS_FAILED", attempts: 2, errorCode: "git_unreachable",
    errorMessage: "down", toCommit: "abcdef0123456789" });
  assert.deepEqual(j, { id: "7", trigger: "timer", status: "failed", attempts: 2, error: "git_unreachable: down", commit: "abcdef01", retryable: true });
  assert.equal(V.jobView({ id: 1, status: "JOB_STATUS_SUCCEEDED" }).retryable, false);
  assert.equal(V.jobView({ id: 1, status: "JOB_STATUS_INTERRUPTED" }).retryable, true);
});

test("countdown", () => {
  assert.deepEqual(V.countdown(new Date(NOW + 125000).toISOString(), NOW), { key: "inMinutes", args: { m: 2, s: "05" } });
  assert.deepEqual(V.countdown(new Date(NOW + 9000).toISOString(), NOW), { key: "inSeconds", args: { s: 9 } });
  assert.deepEqual(V.countdown(new Date(NOW - 1).toISOString(), NOW), { key: "due", args: {} });
  assert.equal(V.countdown(undefined, NOW), null);
});

test("status card: state, reason, wrench, behind, commits", () => {
  const v = V.statusView({
    state: "SYNC_STATE_RECOVERING", configured: true, progress: "installing 2 of 3: a@1", behind: true,
    nextSyncAt: new Date(NOW + 60000).toISOString(),
    remote: { sha: "a".repeat(40), shortSha: "aaaaaaaa", author: "Ada", subject: "S", body: "B", link: "https://x/commit/a" },
  }, NOW);
  assert.equal(v.stateKey, "recovering");
  assert.equal(v.wrench, true);
  assert.equal(v.progress, "installing 2 of 3: a@1");
  assert.equal(v.behind, true);
  assert.equal(v.remote.hasBody, true);
  assert.equal(v.remote.link, "https://x/commit/a");
  assert.equal(v.local, null);
  assert.equal(v.locked, true);
  const e = V.statusView({ state: "SYNC_STATE_ERROR", configured: true, paused: true, reasonCode: "git_auth_failed", reasonMessage: "refused" }, NOW);
  assert.deepEqual(e.reason, { code: "git_auth_failed", message: "refused" });
  assert.equal(e.stateClass, "error");
  assert.equal(e.countdown, null); // paused: no countdown
  assert.equal(e.locked, false);
  assert.equal(V.statusView({}, NOW).stateKey, "notConfigured");
  assert.equal(V.statusView({ health: "pending_retries" }, NOW).health, "pending_retries");
  assert.equal(V.statusView({ health: "bogus" }, NOW).health, "");
  for (const s of Object.keys(V.STATES)) assert.ok(V.statusView({ state: s }, NOW).stateKey);
});

test("form validation: red borders, protocol mismatch, secret paths", () => {
  const ok = { protocol: "https", url: "https://git.example.com/o/r.git", branch: "main", interval: 120,
    username: "global.SECRETS.git.user", password: "global.SECRETS.git.token" };
  assert.deepEqual(V.validateForm(ok), { errors: {}, valid: true, mismatch: false });
  const mm = V.validateForm({ ...ok, protocol: "ssh", sshKey: "global.SECRETS.git.key", knownHosts: "global.SECRETS.git.kh" });
  assert.equal(mm.mismatch, true);
  assert.equal(mm.errors.url, "protocolMismatch");
  assert.equal(V.validateForm({ ...ok, url: "git@github.com:o/r.git" }).errors.url, "protocolMismatch");
  assert.equal(V.validateForm({ ...ok, protocol: "ssh", url: "git@github.com:o/r.git", sshKey: "global.SECRETS.k", knownHosts: "global.SECRETS.h" }).valid, true);
  assert.equal(V.validateForm({ ...ok, interval: 119 }).errors.interval, "interval");
  assert.equal(V.validateForm({ ...ok, branch: "a..b" }).errors.branch, "branch");
  assert.equal(V.validateForm({ ...ok, password: "hunter2" }).errors.password, "secretFormat");
  assert.equal(V.validateForm({ ...ok, password: "" }).errors.password, "required");
  const known = new Set(["global.SECRETS.git.user"]);
  assert.equal(V.validateForm(ok, known).errors.password, "secretMissing");
});

test("form ↔ config round trip keeps other settings", () => {
  const cfg = { repository: { protocol: "https", url: "https://h/o/r.git", branch: "dev", username: "global.SECRETS.u",
    password: "global.SECRETS.p", path: "apps/x", provider: "gitlab" }, sync: { interval: 300, requireApproval: true } };
  const form = V.formFromConfig(cfg);
  assert.equal(form.branch, "dev");
  assert.equal(form.interval, 300);
  const back = V.configFromForm({ ...form, branch: "main" }, cfg);
  assert.equal(back.repository.branch, "main");
  assert.equal(back.repository.path, "apps/x"); // untouched settings survive
  assert.equal(back.sync.requireApproval, true);
});

test("events fold into the model; a new local commit means 'deployed from Git'", () => {
  let m = V.applyEvent({}, { snapshot: { state: "SYNC_STATE_IN_SYNC", local: { sha: "1" } } }, NOW);
  assert.equal(m.lastEventAt, NOW);
  assert.equal(m.deployedFromGit, undefined);
  m = V.applyEvent(m, { job: { id: 3, status: "JOB_STATUS_RUNNING" } }, NOW + 1);
  m = V.applyEvent(m, { job: { id: 3, status: "JOB_STATUS_SUCCEEDED" } }, NOW + 2);
  assert.equal(m.jobs.length, 1);
  assert.equal(m.jobs[0].status, "JOB_STATUS_SUCCEEDED");
  m = V.applyEvent(m, { status: { state: "SYNC_STATE_IN_SYNC", local: { sha: "2" } } }, NOW + 3);
  assert.equal(m.deployedFromGit, "2");
  m = V.applyEvent(m, { heartbeat: { at: "x" } }, NOW + 4);
  assert.equal(m.lastEventAt, NOW + 4);
});

test("the message catalog is complete in every language", () => {
  const fs = require("node:fs");
  const path = require("node:path");
  const keys = (o, p = "") => Object.entries(o).flatMap(([k, v]) => (typeof v === "object" ? keys(v, `${p}${k}.`) : [`${p}${k}`]));
  const dir = path.join(__dirname, "..", "locales");
  const langs = fs.readdirSync(dir);
  assert.ok(langs.includes("en-US") && langs.length >= 2);
  const en = keys(JSON.parse(fs.readFileSync(path.join(dir, "en-US", "gitops.json"), "utf8"))).sort();
  for (const lang of langs) {
    const other = keys(JSON.parse(fs.readFileSync(path.join(dir, lang, "gitops.json"), "utf8"))).sort();
    assert.deepEqual(other, en, `${lang} differs from en-US`);
  }
  // every key the view logic can return exists in the catalog
  for (const s of Object.values(V.STATES)) assert.ok(en.includes(`gitops.status.state.${s.key}`), s.key);
  for (const k of ["connected", "waiting", "paused", "stale", "offline"]) assert.ok(en.includes(`gitops.status.liveState.${k}`));
  for (const k of ["running", "succeeded", "noop", "failed", "interrupted", "pending_approval", "approved", "rejected"]) {
    assert.ok(en.includes(`gitops.jobs.status.${k}`), k);
  }
  for (const k of ["healthy", "pending_retries", "failed"]) assert.ok(en.includes(`gitops.status.health.${k}`), k);
  for (const k of ["required", "protocolMismatch", "branch", "interval", "secretFormat", "secretMissing", "protocol"]) {
    assert.ok(en.includes(`gitops.config.error.${k}`), k);
  }
  // and every catalog key the page uses is in the catalog
  const html = fs.readFileSync(path.join(__dirname, "..", "gitops.html"), "utf8");
  for (const m of html.matchAll(/["'](gitops\.[a-zA-Z.]+)["']/g)) assert.ok(en.includes(m[1]), `${m[1]} missing from the catalog`);
});
