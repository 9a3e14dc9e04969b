def main
  puts "unbalanced"
  if true
end
