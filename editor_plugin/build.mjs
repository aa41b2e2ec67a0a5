// Bundles src/ into resources/gitops-client.js, the browser client the editor half loads
// (Node-RED serves it at resources/<module>/gitops-client.js).
//
//   node build.mjs          write the bundle
//   node build.mjs --check  exit 1 when the committed bundle differs from a fresh build
//
// The output is deterministic for a given package-lock.json, so it is committed and the
// check (run by scripts/build-plugin --check and test/client.test.mjs) catches staleness.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
export const OUTPUT = join(here, "resources", "gitops-client.js");

const BANNER = "/* flow-gitops: GitOps tab client (window.FlowGitOpsClient). Built from editor_plugin/src by scripts/build-plugin; do not edit. */";

/** The bundle's text, built in memory. */
export async function bundle() {
  const result = await esbuild.build({
    entryPoints: [join(here, "src", "index.js")],
    absWorkingDir: here,
    bundle: true,
    format: "iife",
    minify: true,
    target: "es2020",
    platform: "browser",
    charset: "utf8",
    legalComments: "eof",
    banner: { js: BANNER },
    write: false,
    logLevel: "warning",
  });
  return result.outputFiles[0].text;
}

async function main(args) {
  const text = await bundle();
  if (args.includes("--check")) {
    const committed = await readFile(OUTPUT, "utf8").catch(() => "");
    if (committed !== text) {
      console.error(`${OUTPUT} is stale: run scripts/build-plugin`);
      process.exit(1);
    }
    return;
  }
  await mkdir(dirname(OUTPUT), { recursive: true });
  await writeFile(OUTPUT, text);
  console.log(`${OUTPUT}: ${Buffer.byteLength(text)} bytes`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
