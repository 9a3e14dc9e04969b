const input = require("fs").readFileSync(0, "utf8");
const line = input.split("\n")[0];
process.stdout.write(line + "\n");
