program broken
  implicit none
  integer :: x
  x = = 1
end program broken
