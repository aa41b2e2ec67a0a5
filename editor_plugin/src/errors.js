// One error type for every failure the GitOps tab sees, whatever the transport said.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.js";

/**
 * A failed call: `code` is the gRPC status in snake_case ("failed_precondition",
 * "invalid_argument", "unauthenticated", "unavailable", …), `message` is the server's
 * text (safe to show), `violations` lists `{field, description}` per invalid field
 * (from google.rpc.BadRequest; empty for other errors).
 */
export class GitOpsError extends Error {
  constructor(code, message, violations = []) {
    super(message);
    this.name = "GitOpsError";
    this.code = code;
    this.violations = violations;
  }

  toJSON() {
    return { code: this.code, message: this.message, violations: this.violations };
  }
}

/** "FailedPrecondition" → "failed_precondition" (the names gRPC and Connect use on the wire). */
export function codeName(code) {
  const name = Code[code] ?? "Unknown";
  return name.replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase());
}

// What fetch rejects with when no HTTP response came back (Chromium, Node, Firefox, Safari).
const NETWORK_FAILURE = /fetch|network|load failed/i;

/** Any thrown value → GitOpsError; a request that got no HTTP response is "unavailable". */
export function toClientError(err) {
  if (err instanceof GitOpsError) {
    return err;
  }
  const ce = ConnectError.from(err);
  if (ce.code === Code.Unknown && ce.cause?.name === "TypeError" && NETWORK_FAILURE.test(ce.cause.message)) {
    return new GitOpsError("unavailable", `the sidecar cannot be reached: ${ce.cause.message}`);
  }
  const violations = ce.findDetails(BadRequestSchema).flatMap((bad) =>
    bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  return new GitOpsError(codeName(ce.code), ce.rawMessage, violations);
}
