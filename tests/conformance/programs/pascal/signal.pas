{ A SIGKILL to itself. }
program crash;
uses BaseUnix;
begin
  fpKill(fpGetPid, SIGKILL);
end.
