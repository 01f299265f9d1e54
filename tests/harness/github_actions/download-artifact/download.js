const fs = require("fs");
const path = require("path");

const input = (n) => (process.env[`INPUT_${n.toUpperCase()}`] || "").trim();
const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
const store = process.env.SUBSTITUTE_ARTIFACT_DIR;
if (!store) throw new Error("the test must pass --env SUBSTITUTE_ARTIFACT_DIR=/dir");
const name = input("name");
if (!name || input("pattern") || input("run-id")) {
  throw new Error("this substitute downloads one artifact of this run by name only");
}
const source = path.join(store, name);
if (!fs.existsSync(source)) {
  console.log(`::error::Unable to download artifact(s): Artifact not found for name: ${name}`);
  process.exit(1);
}
const dest = path.resolve(workspace, input("path") || ".");
fs.mkdirSync(dest, { recursive: true });
fs.cpSync(source, dest, { recursive: true, force: true });
console.log(`Artifact ${name} downloaded to ${dest}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `download-path=${dest}\n`);
