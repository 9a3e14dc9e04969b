procedure Main is
   N : Integer := 0;
   pragma Volatile (N);
begin
   loop
      N := (N + 1) mod 1000;
   end loop;
end Main;
