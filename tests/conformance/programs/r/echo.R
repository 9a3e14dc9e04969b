con <- file("stdin")
line <- readLines(con, n = 1)
close(con)
if (length(line) > 0) cat(line, "\n", sep = "")
