declare const process: { exit(code: number): never };

process.exit(3);
