# The C library's abort(): SIGABRT.
proc c_abort() {.importc: "abort", header: "<stdlib.h>", noreturn.}
c_abort()
