// Drives the npm `piston-client` package against a Stockade node: node piston_client.mjs URL.
// Prints one JSON object of what the client returned, for tests/compat/test_npm_clients.py to check.
import piston from "piston-client";

const client = piston({ server: process.argv[2] });
const runtimes = await client.runtimes();
const hello = await client.execute("python", 'print("Hello World!")');
const stdin = await client.execute("c", '#include <stdio.h>\nint main(void){int a,b;scanf("%d %d",&a,&b);printf("%d\\n",a+b);}', {
  stdin: "20 22",
  args: [],
});
const broken = await client.execute("c", "int main(void) { return }", { args: [] });
const args = await client.execute("python", "import sys; print(sys.argv[1:])");
console.log(JSON.stringify({ runtimes, hello, stdin, broken, args }));
