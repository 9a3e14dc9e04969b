create buf 256 allot
: next-number ( addr u -- addr' u' n )
  begin over c@ bl = over 0> and while 1 /string repeat
  0. 2swap >number 2swap drop ;
: main
  buf 256 stdin read-line throw drop  ( u )
  buf swap next-number >r next-number >r 2drop
  r> r> + 0 .r cr ;
main
