program echo
  implicit none
  character(len=4096) :: line
  read (*, '(A)') line
  write (*, '(A)') trim(line)
end program echo
