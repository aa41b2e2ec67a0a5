// Runtime half of the flow-gitops plugin.
//
// 1. A relay: the GitOps tab speaks gRPC-web to `gitops/rpc/<service>/<Method>` on
//    Node-RED's own admin API, behind Node-RED's admin authentication
//    (`gitops.read` to watch, `gitops.write` to change anything). The relay forwards to
//    the sidecar with the sidecar's token, which the browser never sees, and streams the
//    answer back unbuffered.
// 2. Dependency recovery: the sidecar installs missing node modules into the userDir with
//    its own npm, then asks Node-RED to load them (POST /nodes). A preInstall hook skips
//    Node-RED's second npm run when the module is already on disk at that version.
//
// Where the sidecar is: env FLOW_GITOPS_URL (default http://127.0.0.1:8472) and
// FLOW_GITOPS_TOKEN_FILE (the sidecar's api-token file on the shared volume), or
// settings.js `flowGitops: { url, tokenFile }`.
const fs = require("fs");
const path = require("path");
const http = require("http");
const https = require("https");

const SERVICE = "flowgitops.v1.GitOpsService";
const READ = new Set(["GetStatus", "WatchStatus", "GetConfig", "ValidateConfig", "GetPlan", "ListJobs",
  "SuggestSecretPaths", "GetRecovery"]);
// GetWebhook can reveal a generated webhook secret once: writers only.
const WRITE = new Set(["SaveConfig", "ForcePull", "Pause", "Resume", "RetryJob", "ApproveDeploy", "RejectDeploy", "GetWebhook", "Promote"]);
const FORWARD_REQUEST = ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout", "accept"];
const FORWARD_RESPONSE = ["content-type", "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding"];

/** A gRPC-web trailer frame (flag 0x80) with status 14 UNAVAILABLE, base64 for grpc-web-text. */
function unavailableTrailer(contentType, message) {
  const text = Buffer.from(`grpc-status:14\r\ngrpc-message:${encodeURIComponent(message)}\r\n`);
  const frame = Buffer.alloc(5 + text.length);
  frame[0] = 0x80;
  frame.writeUInt32BE(text.length, 1);
  text.copy(frame, 5);
  return /grpc-web-text/.test(contentType || "") ? Buffer.from(frame.toString("base64")) : frame;
}

function installedVersion(dir, moduleName) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "node_modules", moduleName, "package.json"), "utf8"));
    return pkg.version;
  } catch (err) {
    return null;
  }
}

function sidecarSettings(RED) {
  const s = (RED.settings && RED.settings.flowGitops) || {};
  return {
    url: new URL(process.env.FLOW_GITOPS_URL || s.url || "http://127.0.0.1:8472"),
    tokenFile: process.env.FLOW_GITOPS_TOKEN_FILE || s.tokenFile || "",
  };
}

function readToken(file) {
  if (!file) return "";
  try {
    return fs.readFileSync(file, "utf8").trim(); // read per call: a rotated token applies at once
  } catch (err) {
    return "";
  }
}

module.exports = function (RED) {
  const settings = sidecarSettings(RED);
  const client = settings.url.protocol === "https:" ? https : http;

  RED.plugins.registerPlugin("flow-gitops", { type: "flow-gitops" });

  function permission(req, res, next) {
    const method = req.params.method;
    if (READ.has(method)) return RED.auth.needsPermission("gitops.read")(req, res, next);
    if (WRITE.has(method)) return RED.auth.needsPermission("gitops.write")(req, res, next);
    res.status(404).json({ error: "unknown_method", message: `no such GitOps method: ${method}` });
  }

  function relay(req, res) {
    const headers = {};
    for (const h of FORWARD_REQUEST) {
      if (req.headers[h]) headers[h] = req.headers[h];
    }
    const token = readToken(settings.tokenFile);
    if (token) headers.authorization = `Bearer ${token}`;
    let done = false;
    let contentType = "";
    const finish = (cut) => {
      if (done) return;
      done = true;
      // Cut off mid-stream (the sidecar died, the connection was reset): end the gRPC-web
      // response with a trailer saying so, instead of a body the browser cannot finish.
      if (res.destroyed || res.writableEnded) return; // the browser left first: nobody to tell
      if (cut) res.write(unavailableTrailer(contentType, "the connection to the GitOps sidecar was lost"));
      res.end();
    };
    const upstream = client.request({
      protocol: settings.url.protocol,
      hostname: settings.url.hostname,
      port: settings.url.port,
      method: "POST",
      path: `${settings.url.pathname.replace(/\/$/, "")}/${SERVICE}/${req.params.method}`,
      headers,
    }, (up) => {
      const out = { "cache-control": "no-cache", "x-accel-buffering": "no" };
      for (const h of FORWARD_RESPONSE) {
        if (up.headers[h]) out[h] = up.headers[h];
      }
      res.writeHead(up.statusCode, out);
      res.flushHeaders();
      contentType = up.headers["content-type"];
      up.on("data", (chunk) => res.write(chunk));
      up.on("end", () => finish(!up.complete));
      up.on("error", () => finish(true));
      up.on("close", () => finish(!up.complete));
    });
    upstream.on("error", (err) => {
      if (!res.headersSent) {
        // A gRPC-web "trailers-only" answer: the tab shows the sidecar as unavailable.
        res.writeHead(200, { "content-type": req.headers["content-type"] || "application/grpc-web+proto",
          "grpc-status": "14", "grpc-message": encodeURIComponent(`the GitOps sidecar is unreachable (${err.code || "error"})`) });
        done = true;
        res.end();
        return;
      }
      finish(true);
    });
    res.on("close", () => upstream.destroy());
    if (req.body !== undefined && Buffer.isBuffer(req.body)) {
      upstream.end(req.body);
    } else {
      req.pipe(upstream);
    }
  }

  RED.httpAdmin.post("/gitops/rpc/" + SERVICE + "/:method", permission, relay);
  RED.httpAdmin.get("/gitops/settings", RED.auth.needsPermission("gitops.read"), (req, res) => {
    res.json({ sidecar: settings.url.origin, tokenConfigured: Boolean(readToken(settings.tokenFile)) });
  });

  RED.hooks.add("preInstall.flowgitops", (event) => {
    if (event.isUpgrade || event.url) {
      return;
    }
    const onDisk = installedVersion(event.dir, event.module);
    if (onDisk && (!event.version || event.version === onDisk)) {
      RED.log.info(`flow-gitops: ${event.module}@${onDisk} is already installed; loading it without npm`);
      return false;
    }
  });
};
