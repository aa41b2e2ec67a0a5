// The GitOps tab's client of flowgitops.v1.GitOpsService: the only module in the
// browser that does network I/O. gRPC-web (binary) over fetch, to the plugin's relay.
import { fromJson, toJson } from "@bufbuild/protobuf";
import { createClient as createRpcClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { GitOpsError, toClientError } from "./errors.js";
import { GitOpsService } from "./gen/flowgitops/v1/gitops_pb.js";
import { connectWatch } from "./reconnect.js";
import { createWatchHub } from "./watch.js";

/**
 * Relative on purpose: the Node-RED editor page resolves it under its own admin root
 * (e.g. /admin/gitops/rpc), where the plugin's runtime half relays
 * `POST gitops/rpc/flowgitops.v1.GitOpsService/<Method>` to the sidecar.
 */
export const DEFAULT_BASE_URL = "gitops/rpc";

// Responses carry every scalar field (false, 0, "", [] included) so view code needs no
// defaults; unset message fields (e.g. Status.drift) stay absent.
const JSON_WRITE = { alwaysEmitImplicit: true };

/**
 * Options:
 * - `baseUrl`: where the service is served (default "gitops/rpc", relative).
 * - `getToken()`: the editor's bearer token, sync or async; read on every call, e.g.
 *   `() => RED.settings.get("auth-tokens")?.access_token`. No header when it is empty.
 * - `timeoutMs`: deadline of each unary call (default 60 s; per call `{timeoutMs}`).
 *   The watch stream has none.
 * - `watchIdleMs`: a watch with no message for this long counts as dead (default 45 s).
 * - `fetch`: a fetch implementation (default the global one).
 *
 * Returns one async method per unary RPC, in camelCase (getStatus, getConfig,
 * validateConfig, saveConfig, forcePull, pause, resume, getPlan, listJobs, retryJob,
 * approveDeploy, rejectDeploy, suggestSecretPaths, getRecovery). Each takes the request
 * and resolves to the response as proto3 JSON objects (lowerCamelCase names, enums as
 * names, Timestamps as RFC 3339 strings, int64 as decimal strings), and takes
 * `{signal, timeoutMs}` as a second argument. Failures reject with a GitOpsError
 * `{code, message, violations: [{field, description}]}`.
 *
 * Plus `watchStatus({onMessage, onError, onEnd})` → close(): the page's one shared
 * WatchStatus stream, snapshot first; and `connectWatch({onMessage, onState, onError})`
 * → close(): the same, reopened with backoff.
 */
export function createClient({ baseUrl = DEFAULT_BASE_URL, getToken, timeoutMs = 60000, watchIdleMs = 45000, fetch } = {}) {
  const transport = createGrpcWebTransport({
    baseUrl,
    interceptors: [bearer(getToken)],
    ...(fetch ? { fetch } : {}),
  });
  const rpc = createRpcClient(GitOpsService, transport);
  const client = {};
  for (const method of GitOpsService.methods) {
    if (method.methodKind === "unary") {
      client[method.localName] = (request, options) => callUnary(rpc, method, request, { timeoutMs, ...options });
    }
  }
  const watchMethod = GitOpsService.method.watchStatus;
  const watchStatus = createWatchHub((signal) => jsonStream(rpc.watchStatus({}, { signal }), watchMethod), { idleMs: watchIdleMs });
  client.watchStatus = watchStatus;
  client.connectWatch = (handlers) => connectWatch(watchStatus, handlers);
  return Object.freeze(client);
}

async function callUnary(rpc, method, request, { signal, timeoutMs }) {
  let input;
  try {
    input = fromJson(method.input, request ?? {});
  } catch (err) {
    throw new GitOpsError("invalid_argument", `${method.name} request: ${err.message}`);
  }
  try {
    const output = await rpc[method.localName](input, { signal, timeoutMs });
    return toJson(method.output, output, JSON_WRITE);
  } catch (err) {
    throw toClientError(err);
  }
}

async function* jsonStream(messages, method) {
  for await (const message of messages) {
    yield toJson(method.output, message, JSON_WRITE);
  }
}

function bearer(getToken) {
  return (next) => async (req) => {
    const token = getToken ? await getToken() : "";
    if (token) {
      req.header.set("Authorization", `Bearer ${token}`);
    }
    return next(req);
  };
}
