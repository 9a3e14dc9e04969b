line = STDIN.gets
puts line if line
