// Node-RED settings for the tests and the demo. Everything comes from the
// environment so one file serves every case:
//   NR_PORT, NR_USER_DIR, NR_ADMIN_TOKEN (enables adminAuth with a static token),
//   NR_READER_TOKEN (a second, read-only token), NR_SECRETS_DIR | NR_SECRETS_FILE |
//   NR_SECRETS_ENV_PREFIX (exposed to flows as global.SECRETS).
const path = require("path");
const fs = require("fs");

// global.SECRETS for the Flow App, from the same source the sidecar reads
// (docs/configuration.md). Exactly one of:
//   NR_SECRETS_DIR   a directory tree: <dir>/git/token is SECRETS.git.token
//                    (a Kubernetes Secret volume; "..data" and dotfiles are skipped)
//   NR_SECRETS_FILE  a JSON file {"git": {"token": "..."}}
//   NR_SECRETS_ENV_PREFIX  variables <prefix>git__token
// Values are read when Node-RED starts; a rotated secret reaches flows after a restart
// (the sidecar itself picks rotations up at once).
function readSecretTree(dir) {
  const out = {};
  if (!dir || !fs.existsSync(dir)) return out;
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    const full = path.join(dir, name);
    const st = fs.statSync(full);
    out[name] = st.isDirectory() ? readSecretTree(full) : fs.readFileSync(full, "utf8").replace(/\n$/, "");
  }
  return out;
}

function readSecretEnv(prefix) {
  const out = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith(prefix) || name.length === prefix.length) continue;
    const parts = name.slice(prefix.length).split("__");
    let node = out;
    parts.slice(0, -1).forEach((p) => { node = node[p] = typeof node[p] === "object" ? node[p] : {}; });
    node[parts[parts.length - 1]] = value;
  }
  return out;
}

function readSecrets() {
  if (process.env.NR_SECRETS_DIR) return readSecretTree(process.env.NR_SECRETS_DIR);
  if (process.env.NR_SECRETS_FILE) return JSON.parse(fs.readFileSync(process.env.NR_SECRETS_FILE, "utf8"));
  if (process.env.NR_SECRETS_ENV_PREFIX) return readSecretEnv(process.env.NR_SECRETS_ENV_PREFIX);
  return {};
}

const settings = {
  uiHost: "127.0.0.1",
  uiPort: Number(process.env.NR_PORT || 1880),
  userDir: process.env.NR_USER_DIR,
  flowFile: "flows.json",
  credentialSecret: process.env.NR_CREDENTIAL_SECRET || "flow-gitops-test-credential-secret",
  flowFilePretty: true,
  runtimeState: { enabled: true },
  telemetry: { enabled: false },
  diagnostics: { enabled: true },
  functionGlobalContext: {
    SECRETS: readSecrets(),
  },
  exportGlobalContextKeys: false,
  logging: {
    console: { level: process.env.NR_LOG_LEVEL || "info", metrics: false, audit: false },
  },
  editorTheme: { projects: { enabled: false }, tours: false },
};

if (process.env.NR_ADMIN_TOKEN) {
  const tokens = [{ token: process.env.NR_ADMIN_TOKEN, user: "admin", scope: ["*"] }];
  if (process.env.NR_READER_TOKEN) {
    tokens.push({ token: process.env.NR_READER_TOKEN, user: "reader", scope: ["read"] });
  }
  settings.adminAuth = {
    type: "credentials",
    // bcrypt hash of a random password nobody knows: the tests use static tokens only.
    users: [
      { username: "admin", password: "$2y$08$Xc3X6P2e1oXkzQ9Q0h3Ih.RN8FqSx3f6Bq4m2N8w1s1l9cJm3mZ5K", permissions: "*" },
      { username: "reader", password: "$2y$08$Xc3X6P2e1oXkzQ9Q0h3Ih.RN8FqSx3f6Bq4m2N8w1s1l9cJm3mZ5K", permissions: "read" },
    ],
    tokens,
  };
}

module.exports = settings;
