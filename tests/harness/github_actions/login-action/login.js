const { execFileSync } = require("child_process");

const input = (n) => (process.env[`INPUT_${n.toUpperCase()}`] || "").trim();
const registry = input("registry");
const username = input("username");
const password = input("password");
if (!username || !password) {
  console.log("::error::Username and password required");
  process.exit(1);
}
console.log(`::add-mask::${password}`);
console.log(`Logging into ${registry || "Docker Hub"}...`);
execFileSync("docker", ["login", ...(registry ? [registry] : []), "--username", username, "--password-stdin"], {
  input: password,
  stdio: ["pipe", "inherit", "inherit"],
});
console.log("Login Succeeded!");
const fs = require("fs");
fs.appendFileSync(process.env.GITHUB_STATE, `registry=${registry}\nlogout=${input("logout")}\n`);
