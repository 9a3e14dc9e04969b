section .text
    global _start

; A write to address 0: SIGSEGV.
_start:
    mov qword [0], 1
    mov rax, 60
    xor rdi, rdi
    syscall
