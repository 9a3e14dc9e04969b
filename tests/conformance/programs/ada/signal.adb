--  A SIGKILL to itself: GNAT's run-time turns SIGABRT and SIGSEGV into exceptions.
with Interfaces.C; use Interfaces.C;

procedure Main is
   function Getpid return int;
   pragma Import (C, Getpid, "getpid");
   function Kill (Pid : int; Sig : int) return int;
   pragma Import (C, Kill, "kill");
   Result : int;
begin
   Result := Kill (Getpid, 9);
end Main;
