program Loop;
var
  n: LongInt;
begin
  n := 0;
  while True do
    n := (n + 1) mod 1000;
end.
