"""What a run that ended by a signal means, in one line a person can act on (shown by the playground and
the CLI). A box reports the signal's number; this names it and says what usually causes it.

32-bit x86 programs are not supported: the box's seccomp filter kills any system call made through a
non-native ABI (i386's `int 0x80`, x32) before it runs, since allowing it would need a second filter for
another syscall table with its own history of kernel bugs. Such a program ends by SIGSYS
(`syscall_blocked`), and the explanation says so.
"""

from __future__ import annotations

import signal

_WHY: dict[int, str] = {
    signal.SIGSEGV: "the program accessed memory it may not (a null or dangling pointer, an index out of "
    "bounds, or a stack overflow from deep recursion)",
    signal.SIGABRT: "the program aborted itself (a failed assert, an uncaught C++ exception, a Rust "
    "abort, or heap corruption found by the C library)",
    signal.SIGFPE: "an arithmetic error: integer division by zero or overflow",
    signal.SIGBUS: "a memory access the hardware cannot do (misaligned, or past the end of a mapped file)",
    signal.SIGILL: "an illegal instruction (a trap such as __builtin_trap or a failed check compiled to ud2)",
    signal.SIGKILL: "killed, by the program itself or one of its processes (the sandbox's own limits are "
    "reported as their own status)",
    signal.SIGTERM: "terminated by a signal sent from inside the box",
    signal.SIGPIPE: "it wrote to a pipe or socket whose reading end was closed",
    signal.SIGTRAP: "a breakpoint or trace trap instruction",
    signal.SIGXCPU: "it raised SIGXCPU itself (the CPU time limit is reported as timeout)",
}
_SYSCALL = (
    "the sandbox stopped the program at a system call it does not allow (a 32-bit x86 call through "
    "`int 0x80` or an elf32 binary counts: only the x86-64 ABI is supported)"
)
_SYSCALL_ASM = (
    "the sandbox stopped the program at a system call it does not allow; in assembly this is nearly always "
    "a 32-bit call (`int 0x80`, eax/ebx…): 32-bit x86 is not supported, use the x86-64 ABI "
    "(rax = number, rdi/rsi/rdx = arguments, `syscall`; write is 1, exit is 60)"
)
_ASSEMBLY = frozenset({"nasm"})


def signal_name(number: int | None) -> str | None:
    """The name of signal `number` (11: SIGSEGV), None for no signal, "SIG<n>" for one Python does not name."""
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def explain(number: int | None, language: str) -> str | None:
    """One line for a stage that ended by signal `number`, or None if it did not."""
    name = signal_name(number)
    if number is None or name is None:
        return None
    if number == signal.SIGSYS:
        why = _SYSCALL_ASM if language in _ASSEMBLY else _SYSCALL
    else:
        why = _WHY.get(number, "ended by a signal")
    return f"{name} ({signal.strsignal(number) or name}): {why}"
