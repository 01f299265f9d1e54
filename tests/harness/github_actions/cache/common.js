const fs = require("fs");
const path = require("path");

function input(name) {
  return (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();
}
function lines(value) {
  return value.split("\n").map((l) => l.trim()).filter(Boolean);
}
function storeRoot() {
  const root = process.env.SUBSTITUTE_CACHE_DIR;
  if (!root) throw new Error("the test must pass --env SUBSTITUTE_CACHE_DIR=/dir");
  fs.mkdirSync(root, { recursive: true });
  return root;
}
function entryDir(key) {
  return path.join(storeRoot(), encodeURIComponent(key));
}
// Cached paths are stored under their path relative to the workspace.
function cachedPaths() {
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  return lines(input("path")).map((p) => {
    const absolute = path.resolve(workspace, p.replace(/^~(?=$|\/)/, process.env.HOME));
    return { absolute, stored: encodeURIComponent(p) };
  });
}
function append(file, text) {
  if (file) fs.appendFileSync(file, text + "\n");
}
module.exports = { input, lines, storeRoot, entryDir, cachedPaths, append };
