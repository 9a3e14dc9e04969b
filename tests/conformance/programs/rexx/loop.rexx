n = 0
do forever
  n = (n + 1) // 1000
end
