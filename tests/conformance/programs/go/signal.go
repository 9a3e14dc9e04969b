// The Go runtime turns SIGSEGV into a panic (exit 2); a SIGKILL it cannot catch.
package main

import "syscall"

func main() {
	syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
}
