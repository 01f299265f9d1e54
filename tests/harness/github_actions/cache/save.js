const fs = require("fs");
const path = require("path");
const { input, entryDir, cachedPaths } = require("./common.js");

const key = process.env.STATE_CACHE_KEY || input("key");
if (process.env.STATE_CACHE_RESULT === key || fs.existsSync(entryDir(key))) {
  console.log(`Cache hit occurred on the primary key ${key}, not saving cache.`);
  process.exit(0);
}
const staging = `${entryDir(key)}.tmp-${process.pid}`;
let saved = 0;
for (const p of cachedPaths()) {
  if (fs.existsSync(p.absolute)) {
    fs.cpSync(p.absolute, path.join(staging, p.stored), { recursive: true });
    saved += 1;
  }
}
if (!saved) {
  console.log("::warning::Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.");
  process.exit(0);
}
fs.renameSync(staging, entryDir(key));
console.log(`Cache saved with key: ${key}`);
