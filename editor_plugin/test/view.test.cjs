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

test("import errors: listed by path when present, nothing otherwise", () => {
  const st = { state: "SYNC_STATE_ERROR", configured: true, importErrors: [
    { path: "prod/flows/z.json", message: "not valid JSON: Expecting value at line 1 column 2" },
    { path: "prod/flows/My Flow.json", message: "invalid file name 'My Flow.json'" },
    { path: "", message: "a nameless entry is dropped" }] };
  assert.deepEqual(V.statusView(st, NOW).importErrors, [
    { path: "prod/flows/My Flow.json", message: "invalid file name 'My Flow.json'" },
    { path: "prod/flows/z.json", message: "not valid JSON: Expecting value at line 1 column 2" }]);
  assert.deepEqual(V.statusView({ state: "SYNC_STATE_IN_SYNC", importErrors: [] }, NOW).importErrors, []);
  assert.deepEqual(V.statusView({}, NOW).importErrors, []); // an older sidecar without the field
});

test("promotion target: the sidecar's environment-name rule, never the current environment", () => {
  assert.equal(V.targetEnvironmentError("production", "staging"), null);
  assert.equal(V.targetEnvironmentError("  prod-2.eu_west  ", "staging"), null);
  assert.equal(V.targetEnvironmentError("P" + "x".repeat(62), "staging"), null); // 63 characters
  assert.equal(V.targetEnvironmentError("P" + "x".repeat(63), "staging"), "environment");
  assert.equal(V.targetEnvironmentError("", "staging"), "required");
  assert.equal(V.targetEnvironmentError("   ", "staging"), "required");
  for (const bad of ["-prod", ".prod", "_prod", "prod env", "prod/eu", "prod!", "prüf"]) {
    assert.equal(V.targetEnvironmentError(bad, "staging"), "environment", bad);
  }
  assert.equal(V.targetEnvironmentError("staging", "staging"), "sameEnvironment");
  // "Staging" would write into staging's own folder (the sidecar compares folder names, layout.slug)
  assert.equal(V.targetEnvironmentError("Staging", "staging"), "sameEnvironment");
  assert.equal(V.targetEnvironmentError("staging.", "staging"), "sameEnvironment");
  assert.equal(V.targetEnvironmentError("staging-eu", "staging"), null);
});

test("promote section: shown in the source modes, a checklist from the editor, enabled only when complete", () => {
  const ws = [{ id: "t1", label: "Orders" }, { id: "t2", label: "" }, { id: "t3", label: "Old", disabled: true }, null];
  assert.deepEqual(V.promoteFlows(ws), [{ id: "t1", label: "Orders", disabled: false }, { id: "t2", label: "t2", disabled: false },
    { id: "t3", label: "Old", disabled: true }]);
  const status = { configured: true, mode: "push", environment: "staging" };
  const base = { status, flows: ws, selected: new Set(["t1"]), target: "production", title: " Release 5 ", canWrite: true, busy: false };
  const v = V.promoteView(base);
  assert.equal(v.visible, true);
  assert.equal(v.canPromote, true);
  assert.deepEqual(v.flows.map((f) => [f.id, f.checked]), [["t1", true], ["t2", false], ["t3", false]]);
  assert.deepEqual(v.request, { flowIds: ["t1"], targetEnvironment: "production", title: "Release 5" });
  // the modes: the source of a promotion (push, bidirectional, promotion), never pull or off
  for (const mode of ["push", "bidirectional", "promotion"]) assert.equal(V.promoteView({ ...base, status: { ...status, mode } }).visible, true, mode);
  for (const mode of ["pull", "off", ""]) assert.equal(V.promoteView({ ...base, status: { ...status, mode } }).visible, false, mode);
  assert.equal(V.promoteView({ ...base, status: { ...status, configured: false } }).visible, false);
  assert.deepEqual(V.PROMOTE_MODES, ["push", "bidirectional", "promotion"]);
  // incomplete or not allowed: Promote is disabled
  assert.equal(V.promoteView({ ...base, selected: new Set() }).canPromote, false);
  assert.equal(V.promoteView({ ...base, selected: new Set(["gone"]) }).canPromote, false); // a flow no longer in the editor
  const same = V.promoteView({ ...base, target: "staging" });
  assert.deepEqual([same.canPromote, same.targetError, same.showTargetError], [false, "sameEnvironment", true]);
  const empty = V.promoteView({ ...base, target: "" });
  assert.deepEqual([empty.canPromote, empty.targetError, empty.showTargetError], [false, "required", false]); // no red before typing
  const reader = V.promoteView({ ...base, canWrite: false });
  assert.deepEqual([reader.visible, reader.readOnly, reader.canPromote], [true, true, false]);
  assert.equal(V.promoteView({ ...base, busy: true }).canPromote, false); // one request at a time
  assert.equal(V.promoteView({}).visible, false);
});

test("promote outcome: a link to the pull request, or the error", () => {
  const ok = V.promoteOutcome({ branch: "promote/staging-to-production-1", commit: "c", number: "12",
    url: "https://github.example/org/flows/pull/12", files: ["production/flows/orders.json", "production/config-nodes.json"] });
  assert.deepEqual(ok, { kind: "opened", number: "12", url: "https://github.example/org/flows/pull/12",
    branch: "promote/staging-to-production-1", files: 2 });
  assert.equal(V.promoteOutcome({ number: "3", url: "javascript:alert(1)" }).url, ""); // never a script link
  assert.deepEqual(V.promoteOutcome(null, { code: "invalid_argument", message: "production already has these flows" }),
    { kind: "failed", message: "production already has these flows" });
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
  for (const k of ["required", "environment", "sameEnvironment"]) assert.ok(en.includes(`gitops.promote.error.${k}`), k);
  for (const k of ["title", "hint"]) assert.ok(en.includes(`gitops.importErrors.${k}`), k);
  // and every catalog key the page uses is in the catalog
  const html = fs.readFileSync(path.join(__dirname, "..", "gitops.html"), "utf8");
  const permissions = ["gitops.read", "gitops.write"]; // Node-RED permission names, not catalog keys
  for (const m of html.matchAll(/["'](gitops\.[a-zA-Z.]+)["']/g)) {
    if (!permissions.includes(m[1])) assert.ok(en.includes(m[1]), `${m[1]} missing from the catalog`);
  }
});
