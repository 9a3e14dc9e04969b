section .text
    global _start

; exit(0) the 32-bit way: int 0x80 is the i386 ABI, which the box does not allow.
_start:
    mov eax, 1
    xor ebx, ebx
    int 0x80
