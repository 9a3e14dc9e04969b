proc main {} {
    puts "unbalanced"
