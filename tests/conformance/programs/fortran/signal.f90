! The abort intrinsic: SIGABRT.
program crash
    call abort()
end program crash
