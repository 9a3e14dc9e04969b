while {1} {}
