con <- file("stdin")
nums <- scan(con, what = numeric(), n = 2, quiet = TRUE)
close(con)
cat(format(sum(nums), scientific = FALSE), "\n", sep = "")
