program exit3
  implicit none
  call exit(3)
end program exit3
