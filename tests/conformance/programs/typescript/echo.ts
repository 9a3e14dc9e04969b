// Node's typings (@types/node) are not packaged with Debian's tsc: declare what is used.
declare function require(name: string): any;
declare const process: any;

const input: string = require("fs").readFileSync(0, "utf8");
const line: string = input.split("\n")[0];
process.stdout.write(line + "\n");
