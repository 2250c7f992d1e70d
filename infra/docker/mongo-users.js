// MongoDB of the docker-compose deployment: one user per service, limited to its own
// database (readWrite there, nothing elsewhere), passwords from the deployment's secrets.
// Run once by the mongo image when its data volume is empty (/docker-entrypoint-initdb.d).
const fs = require("fs");
const databases = {
  intake: "tiaojie_intake",
  referral: "tiaojie_referral",
  registry: "tiaojie_registry",
  stats: "tiaojie_stats",
  library: "tiaojie_library",
  console: "tiaojie_console",
};
for (const [user, name] of Object.entries(databases)) {
  const pwd = fs.readFileSync(`/run/secrets/mongo_password_${user}`, "utf8").trim();
  db.getSiblingDB(name).createUser({ user, pwd, roles: [{ role: "readWrite", db: name }] });
}
