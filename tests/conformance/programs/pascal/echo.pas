program Echo;
var
  line: AnsiString;
begin
  ReadLn(line);
  WriteLn(line);
end.
