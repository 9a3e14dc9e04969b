# A SIGKILL to itself.
Process.signal(Signal::KILL, Process.pid)
