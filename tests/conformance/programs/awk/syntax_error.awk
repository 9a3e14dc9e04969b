BEGIN { print "unbalanced" 
