program Broken;
begin
  WriteLn('unterminated)
end
