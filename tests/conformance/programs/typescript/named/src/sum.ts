declare function require(name: string): any;

const nums: number[] = require("fs").readFileSync(0, "utf8").trim().split(/\s+/).map(Number);
const total: number = nums[0] + nums[1];
console.log(total);
