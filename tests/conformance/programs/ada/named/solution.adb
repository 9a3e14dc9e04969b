--  Issue 22: a unit named unlike its file (GNAT warns, and builds it).
with Ada.Text_IO;
with Ada.Integer_Text_IO;

procedure Adder is
   A, B : Integer;
begin
   Ada.Integer_Text_IO.Get (A);
   Ada.Integer_Text_IO.Get (B);
   Ada.Text_IO.Put_Line (Integer'Image (A + B) (2 .. Integer'Image (A + B)'Last));
end Adder;
