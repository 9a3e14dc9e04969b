with Ada.Text_IO; use Ada.Text_IO;

procedure Main is
begin
   Put_Line (Get_Line);
end Main;
