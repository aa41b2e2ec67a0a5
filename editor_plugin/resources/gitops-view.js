/* flow-gitops GitOps tab: view logic as pure functions (no DOM, no network).
 * State in, what to show out; labels are message-catalog keys, never text.
 * Works in the editor (window.FlowGitOpsView) and in `node --test` (module.exports). */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.FlowGitOpsView = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const MIN_INTERVAL = 120;
  const SECRET_PATH = /^global\.SECRETS(\.[A-Za-z0-9_][A-Za-z0-9_-]*)+$/;
  const SCP_URL = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+$/;
  // An environment name as the sidecar accepts it for a promotion target (sidecar/promote.py).
  const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
  // Modes whose Flow App is a source of promotions (SPEC V6): its flows are authored here
  // (push, bidirectional) or arrived by a merged promotion and move on to the next stage
  // (promotion). In pull mode the repository is the source of truth: promote from where
  // the flows are authored.
  const PROMOTE_MODES = ["push", "bidirectional", "promotion"];

  const STATES = {
    SYNC_STATE_NOT_CONFIGURED: { key: "notConfigured", cls: "muted", icon: "fa-plug" },
    SYNC_STATE_PAUSED: { key: "paused", cls: "muted", icon: "fa-pause" },
    SYNC_STATE_IN_SYNC: { key: "inSync", cls: "ok", icon: "fa-check" },
    SYNC_STATE_BEHIND: { key: "behind", cls: "warn", icon: "fa-clock-o" },
    SYNC_STATE_SYNCING: { key: "syncing", cls: "busy", icon: "fa-refresh fa-spin" },
    SYNC_STATE_RECOVERING: { key: "recovering", cls: "busy", icon: "fa-wrench" },
    SYNC_STATE_PENDING_APPROVAL: { key: "pendingApproval", cls: "warn", icon: "fa-hand-paper-o" },
    SYNC_STATE_ERROR: { key: "error", cls: "error", icon: "fa-exclamation-triangle" },
  };

  function ms(ts) {
    if (!ts) return null;
    const t = Date.parse(ts);
    return Number.isNaN(t) ? null : t;
  }

  /** One of five "Live updates" states (and whether to show the stale banner).
   *  - offline: the browser has no network;
   *  - waiting: no event received yet since the page loaded;
   *  - stale: the stream is down, or nothing arrived for more than twice the sync interval;
   *  - paused: connected, sync paused;  - connected. */
  function liveUpdates(s) {
    if (s.online === false) return { key: "offline", banner: false };
    if (!s.lastEventAt) return { key: "waiting", banner: false };
    const interval = Math.max(Number(s.intervalSeconds) || MIN_INTERVAL, 1);
    const quiet = (s.now - s.lastEventAt) > 2 * interval * 1000;
    if (!s.connected || quiet) return { key: "stale", banner: true };
    if (s.paused) return { key: "paused", banner: false };
    return { key: "connected", banner: false };
  }

  /** "2 min 05 s" until the next sync, or "due" when it is now or past. */
  function countdown(nextSyncAt, now) {
    const t = ms(nextSyncAt);
    if (t === null) return null;
    const left = Math.round((t - now) / 1000);
    if (left <= 0) return { key: "due", args: {} };
    const m = Math.floor(left / 60);
    const s = left % 60;
    return m > 0 ? { key: "inMinutes", args: { m, s: String(s).padStart(2, "0") } } : { key: "inSeconds", args: { s } };
  }

  function commitView(c) {
    if (!c || !c.sha) return null;
    return {
      sha: c.sha, short: c.shortSha || c.sha.slice(0, 8), link: c.link || "", author: c.author || "",
      email: c.email || "", date: c.date || "", subject: c.subject || "", body: c.body || "", hasBody: Boolean(c.body),
    };
  }

  /** What the status card shows. */
  function statusView(status, now) {
    const st = status || {};
    const state = STATES[st.state] || STATES.SYNC_STATE_NOT_CONFIGURED;
    const recovery = st.recovery || {};
    return {
      stateKey: state.key, stateClass: state.cls, icon: state.icon,
      wrench: st.state === "SYNC_STATE_RECOVERING",
      progress: st.progress || "",
      reason: st.reasonCode ? { code: st.reasonCode, message: st.reasonMessage || "" } : null,
      behind: Boolean(st.behind),
      countdown: st.paused || !st.configured ? null : countdown(st.nextSyncAt, now),
      pending: st.pendingCommit || "",
      drift: st.drift ? (st.drift.message || "drift") : "",
      restartRequired: (recovery.restartRequired || []).slice(),
      unresolvedTypes: (recovery.unresolvedTypes || []).slice(),
      failedModules: (recovery.failedModules || []).slice(),
      remote: commitView(st.remote), local: commitView(st.local),
      health: ["healthy", "pending_retries", "failed"].includes(st.health) ? st.health : "",
      importErrors: importErrorsView(st),
      locked: Boolean(st.configured && !st.paused),
      paused: Boolean(st.configured && st.paused), configured: Boolean(st.configured),
    };
  }

  function secretPathError(value, required) {
    if (!value) return required ? "required" : null;
    if (!value.startsWith("global.SECRETS.")) return "secretFormat";
    if (!SECRET_PATH.test(value)) return "secretFormat";
    return null;
  }

  function protocolMismatch(protocol, url) {
    if (!url) return false;
    if (protocol === "ssh") return !(url.startsWith("ssh://") || (SCP_URL.test(url) && !url.includes("://")));
    if (protocol === "https") return !/^https?:\/\//.test(url);
    return false;
  }

  function branchError(b) {
    if (!b) return "required";
    if (/[\s~^:?*[\\\x00-\x1f\x7f]/.test(b) || b.includes("..") || b.includes("@{") || b.startsWith("-") ||
        b.startsWith("/") || b.endsWith("/") || b.endsWith(".") || b.includes("//") || b === "HEAD" ||
        b.split("/").some((p) => p.startsWith(".") || p.endsWith(".lock"))) return "branch";
    return null;
  }

  /** Field errors (message keys) for the configuration form; `known` is the set of secret
   *  paths the sidecar reported (autocomplete), used to flag paths that do not exist. */
  function validateForm(f, known) {
    const errors = {};
    const set = (k, v) => { if (v) errors[k] = v; };
    set("protocol", f.protocol === "https" || f.protocol === "ssh" ? null : "protocol");
    if (!f.url) errors.url = "required";
    else if (protocolMismatch(f.protocol, f.url)) errors.url = "protocolMismatch";
    set("branch", branchError(f.branch));
    const interval = Number(f.interval);
    if (!Number.isInteger(interval) || interval < MIN_INTERVAL) errors.interval = "interval";
    const fields = f.protocol === "ssh" ? [["sshKey", true], ["sshPassphrase", false], ["knownHosts", true]]
      : [["username", false], ["password", Boolean(f.username)]];
    for (const [name, required] of fields) {
      let e = secretPathError(f[name] || "", required);
      if (!e && f[name] && known && known.size && !known.has(f[name])) e = "secretMissing";
      set(name, e);
    }
    return { errors, valid: Object.keys(errors).length === 0, mismatch: errors.url === "protocolMismatch" };
  }

  /** The sidecar's config message ↔ the form's fields. */
  function formFromConfig(cfg) {
    const r = (cfg && cfg.repository) || {};
    const s = (cfg && cfg.sync) || {};
    return {
      protocol: r.protocol === "ssh" ? "ssh" : "https", url: r.url || "", branch: r.branch || "main",
      interval: s.interval || MIN_INTERVAL, username: r.username || "", password: r.password || "",
      sshKey: r.sshKey || "", sshPassphrase: r.sshPassphrase || "", knownHosts: r.knownHosts || "",
      requireApproval: Boolean(s.requireApproval),
    };
  }

  function configFromForm(f, base) {
    const r = Object.assign({}, (base && base.repository) || {});
    const s = Object.assign({}, (base && base.sync) || {});
    Object.assign(r, { protocol: f.protocol, url: f.url.trim(), branch: f.branch.trim() });
    if (f.protocol === "ssh") Object.assign(r, { sshKey: f.sshKey, sshPassphrase: f.sshPassphrase, knownHosts: f.knownHosts, username: "", password: "" });
    else Object.assign(r, { username: f.username, password: f.password, sshKey: "", sshPassphrase: "" });
    s.interval = Number(f.interval);
    return { repository: r, sync: s };
  }

  /** A job row: status key, whether it can be retried (failed or interrupted). */
  function jobView(j) {
    const status = String(j.status || "").replace(/^JOB_STATUS_/, "").toLowerCase();
    return { id: String(j.id), trigger: j.trigger || "", status, attempts: Number(j.attempts) || 1,
      error: j.errorCode ? `${j.errorCode}: ${j.errorMessage || ""}` : "", commit: (j.toCommit || "").slice(0, 8),
      retryable: status === "failed" || status === "interrupted" };
  }

  /** V7: the files the last read of the repository could not import, by path. */
  function importErrorsView(status) {
    return ((status && status.importErrors) || [])
      .filter((e) => e && e.path)
      .map((e) => ({ path: String(e.path), message: String(e.message || "") }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Why a promotion target is not acceptable (a message key under gitops.promote.error), or null. */
  /** An environment's folder name, as the sidecar makes it (layout.slug): "Test" and "test" share one. */
  function environmentFolder(value) {
    const ascii = String(value || "").normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
    const s = ascii.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
    return s.slice(0, 60).replace(/-+$/, "") || "flow";
  }

  function targetEnvironmentError(value, current) {
    const v = String(value || "").trim();
    if (!v) return "required";
    if (!ENVIRONMENT.test(v)) return "environment";
    if (current && environmentFolder(v) === environmentFolder(current)) return "sameEnvironment";
    return null;
  }

  /** The editor's flows (tabs, from RED.nodes.eachWorkspace) as checklist items, in editor order. */
  function promoteFlows(workspaces) {
    return (workspaces || []).filter((w) => w && w.id)
      .map((w) => ({ id: String(w.id), label: String(w.label || w.id), disabled: Boolean(w.disabled) }));
  }

  /** The Promote section: whether it shows, the checklist, the target's error, whether
   *  Promote can be pressed, and the request it sends. `selected` is a Set of flow ids. */
  function promoteView(p) {
    const st = (p && p.status) || {};
    const selected = (p && p.selected) || new Set();
    const visible = Boolean(st.configured) && PROMOTE_MODES.includes(st.mode);
    const flows = promoteFlows(p && p.flows).map((f) => Object.assign(f, { checked: selected.has(f.id) }));
    const flowIds = flows.filter((f) => f.checked).map((f) => f.id);
    const target = String((p && p.target) || "").trim();
    const targetError = targetEnvironmentError(target, st.environment || "");
    const readOnly = Boolean(p && p.canWrite === false);
    return {
      visible, flows, readOnly, targetError,
      showTargetError: Boolean(targetError && targetError !== "required"),
      canPromote: visible && !readOnly && !(p && p.busy) && flowIds.length > 0 && !targetError,
      request: { flowIds, targetEnvironment: target, title: String((p && p.title) || "").trim() },
    };
  }

  /** What the Promote RPC's answer or failure shows: a link to the pull request, or the error. */
  function promoteOutcome(res, err) {
    if (err) return { kind: "failed", message: String(err.message || err) };
    const r = res || {};
    const url = /^https?:\/\//i.test(String(r.url || "")) ? String(r.url) : ""; // a link only to a web page
    return { kind: "opened", number: String(r.number || ""), url, branch: String(r.branch || ""),
      files: (r.files || []).length };
  }

  /** Fold a WatchStatus message into the page model. */
  function applyEvent(model, msg, now) {
    const next = Object.assign({}, model, { lastEventAt: now });
    if (msg.snapshot) next.status = msg.snapshot;
    else if (msg.status) {
      const prevLocal = model.status && model.status.local && model.status.local.sha;
      next.status = msg.status;
      const newLocal = msg.status.local && msg.status.local.sha;
      if (prevLocal && newLocal && prevLocal !== newLocal) next.deployedFromGit = newLocal;
    } else if (msg.job) {
      const jobs = (model.jobs || []).filter((j) => j.id !== msg.job.id);
      next.jobs = [msg.job].concat(jobs).slice(0, 20);
    }
    return next;
  }

  return { liveUpdates, countdown, statusView, commitView, validateForm, protocolMismatch, branchError, secretPathError,
    formFromConfig, configFromForm, applyEvent, jobView, importErrorsView, targetEnvironmentError, promoteFlows, promoteView,
    promoteOutcome, STATES, MIN_INTERVAL, PROMOTE_MODES };
});
