line = fgetl(stdin);
if ischar(line)
  printf("%s\n", line);
end
