-- stdin becomes one row: ascii mode splits only on 0x1E/0x1F, so newlines stay in the value.
CREATE TEMP TABLE stdin(data TEXT);
.mode ascii
.import /dev/stdin stdin
.mode list
SELECT CASE WHEN instr(data, char(10)) > 0 THEN substr(data, 1, instr(data, char(10)) - 1) ELSE data END
FROM stdin;
