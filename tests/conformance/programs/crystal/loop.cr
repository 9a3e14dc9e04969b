n = 0_i64
loop do
  n = (n + 1) % 1000
end
