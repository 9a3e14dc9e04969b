a, b = $stdin.gets.split.map(&:to_i)
puts a + b
