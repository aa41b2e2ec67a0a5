// Entry of resources/gitops-client.js (an IIFE): exposes window.FlowGitOpsClient.
import { createBus } from "./bus.js";
import { DEFAULT_BASE_URL, createClient } from "./client.js";
import { GitOpsError } from "./errors.js";
import { nextDelay } from "./reconnect.js";

const api = Object.freeze({ createClient, createBus, GitOpsError, nextDelay, DEFAULT_BASE_URL });

(typeof window !== "undefined" ? window : globalThis).FlowGitOpsClient = api;
