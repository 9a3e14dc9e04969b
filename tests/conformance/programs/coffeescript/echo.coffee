input = require('fs').readFileSync(0, 'utf8')
process.stdout.write input.split('\n')[0] + '\n'
