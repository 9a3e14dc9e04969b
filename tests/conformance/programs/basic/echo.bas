line input "" a$
print a$
