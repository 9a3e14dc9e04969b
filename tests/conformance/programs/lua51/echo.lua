local line = io.read("*l")
if line then io.write(line, "\n") end
