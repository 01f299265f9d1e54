// Same rules as upload-artifact v4 for literal paths: the artifact's root is the least common
// ancestor of the given paths (a single directory uploads its contents), hidden files are left
// out unless include-hidden-files, a name can exist only once per run unless overwrite.
const fs = require("fs");
const path = require("path");

const input = (n) => (process.env[`INPUT_${n.toUpperCase()}`] || "").trim();
const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
const store = process.env.SUBSTITUTE_ARTIFACT_DIR;
if (!store) throw new Error("the test must pass --env SUBSTITUTE_ARTIFACT_DIR=/dir");
const name = input("name") || "artifact";
const includeHidden = input("include-hidden-files") === "true";

const patterns = input("path").split("\n").map((l) => l.trim()).filter(Boolean);
if (patterns.some((p) => /[*?[\]]/.test(p) || p.startsWith("!"))) {
  throw new Error("this substitute supports literal paths only; extend it for glob patterns");
}
const files = [];
const walk = (p) => {
  if (!includeHidden && path.basename(p).startsWith(".")) return;
  const stat = fs.statSync(p);
  if (stat.isDirectory()) fs.readdirSync(p).forEach((e) => walk(path.join(p, e)));
  else files.push(p);
};
const roots = [];
for (const pattern of patterns) {
  const absolute = path.resolve(workspace, pattern);
  if (!fs.existsSync(absolute)) continue;
  roots.push(fs.statSync(absolute).isDirectory() ? absolute : path.dirname(absolute));
  walk(absolute);
}
if (!files.length) {
  const message = `No files were found with the provided path: ${patterns.join(", ")}. No artifacts will be uploaded.`;
  const mode = input("if-no-files-found") || "warn";
  if (mode === "error") {
    console.log(`::error::${message}`);
    process.exit(1);
  }
  console.log(mode === "warn" ? `::warning::${message}` : message);
  process.exit(0);
}
let root = roots[0];
for (const r of roots.slice(1)) {
  while (!(r + path.sep).startsWith(root + path.sep) && r !== root) root = path.dirname(root);
}
const target = path.join(store, name);
if (fs.existsSync(target)) {
  if (input("overwrite") !== "true") {
    console.log(`::error::Failed to CreateArtifact: an artifact with this name already exists on the workflow run: ${name}`);
    process.exit(1);
  }
  fs.rmSync(target, { recursive: true });
}
for (const file of files) {
  const dest = path.join(target, path.relative(root, file));
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(file, dest);
}
console.log(`Artifact ${name} uploaded: ${files.length} file(s) from ${path.relative(workspace, root) || "."}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `artifact-id=${name}\n`);
