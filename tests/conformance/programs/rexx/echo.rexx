line = linein()
say line
