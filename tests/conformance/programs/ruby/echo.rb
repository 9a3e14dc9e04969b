line = $stdin.gets
print line if line
