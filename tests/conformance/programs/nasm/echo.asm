; Read up to 4096 bytes from stdin and write the first line back.
section .bss
    buf resb 4096

section .text
    global _start

_start:
    xor eax, eax            ; read(0, buf, 4096)
    xor edi, edi
    lea rsi, [rel buf]
    mov edx, 4096
    syscall
    test rax, rax
    jle .done
    mov rcx, rax            ; find the first newline
    xor rdx, rdx
.scan:
    cmp rdx, rcx
    je .write
    cmp byte [rsi + rdx], 10
    je .found
    inc rdx
    jmp .scan
.found:
    inc rdx
.write:
    mov eax, 1              ; write(1, buf, rdx)
    mov edi, 1
    syscall
.done:
    mov eax, 60
    xor edi, edi
    syscall
