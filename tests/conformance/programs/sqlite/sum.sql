CREATE TEMP TABLE stdin(data TEXT);
.mode ascii
.import /dev/stdin stdin
.mode list
WITH input(line) AS (SELECT trim(data, ' ' || char(9) || char(10) || char(13)) FROM stdin)
SELECT CAST(substr(line, 1, instr(line, ' ') - 1) AS INTEGER)
     + CAST(trim(substr(line, instr(line, ' ') + 1)) AS INTEGER)
FROM input;
