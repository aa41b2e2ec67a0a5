// Runtime half of the flow-gitops plugin.
//
// Dependency recovery: the sidecar installs missing node modules into the userDir with
// its own npm (its registry, timeout and captured output), then asks Node-RED to load
// them (POST /nodes). Node-RED would run npm install once more — against whatever
// registry its own environment names. This preInstall hook skips that second npm run
// when the requested module is already on disk at the requested version, so Node-RED
// just loads it. Anything else (a real install from the palette manager, an upgrade)
// goes through untouched.
const fs = require("fs");
const path = require("path");

function installedVersion(dir, moduleName) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "node_modules", moduleName, "package.json"), "utf8"));
    return pkg.version;
  } catch (err) {
    return null;
  }
}

module.exports = function (RED) {
  RED.plugins.registerPlugin("flow-gitops", { type: "flow-gitops" });

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
