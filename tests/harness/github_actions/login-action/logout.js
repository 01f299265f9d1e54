const { execFileSync } = require("child_process");

if ((process.env.STATE_logout || process.env.INPUT_LOGOUT || "true").trim() !== "false") {
  const registry = process.env.STATE_registry || (process.env.INPUT_REGISTRY || "").trim();
  execFileSync("docker", ["logout", ...(registry ? [registry] : [])], { stdio: "inherit" });
}
