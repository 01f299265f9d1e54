const fs = require("fs");
const path = require("path");
const { input, lines, storeRoot, entryDir, cachedPaths, append } = require("./common.js");

const key = input("key");
let matched = null;
if (fs.existsSync(entryDir(key))) {
  matched = key;
} else {
  const entries = fs.readdirSync(storeRoot()).map((e) => ({
    key: decodeURIComponent(e),
    mtime: fs.statSync(path.join(storeRoot(), e)).mtimeMs,
  }));
  for (const prefix of lines(input("restore-keys"))) {
    const candidates = entries.filter((e) => e.key.startsWith(prefix)).sort((a, b) => b.mtime - a.mtime);
    if (candidates.length) {
      matched = candidates[0].key;
      break;
    }
  }
}
const hit = matched === key;
if (matched && input("lookup-only") !== "true") {
  for (const p of cachedPaths()) {
    const source = path.join(entryDir(matched), p.stored);
    if (fs.existsSync(source)) {
      fs.mkdirSync(path.dirname(p.absolute), { recursive: true });
      fs.cpSync(source, p.absolute, { recursive: true, force: true });
    }
  }
}
if (!matched && input("fail-on-cache-miss") === "true") {
  console.log(`::error::Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: ${key}`);
  process.exit(1);
}
console.log(matched ? `Cache restored from key: ${matched}` : `Cache not found for input keys: ${[key, ...lines(input("restore-keys"))].join(", ")}`);
append(process.env.GITHUB_OUTPUT, `cache-hit=${hit}`);
append(process.env.GITHUB_STATE, `CACHE_KEY=${key}`);
append(process.env.GITHUB_STATE, `CACHE_RESULT=${matched || ""}`);
