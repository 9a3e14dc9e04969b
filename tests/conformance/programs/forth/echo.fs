create buf 4096 allot
buf 4096 stdin read-line throw [if] buf swap type cr [else] drop [then]
