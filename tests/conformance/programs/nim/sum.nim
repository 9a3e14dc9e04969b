import std/[strutils, sequtils]

let nums = stdin.readLine().splitWhitespace().map(parseBiggestInt)
echo nums[0] + nums[1]
