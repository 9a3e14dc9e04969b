; Read "a b" (non-negative or negative integers) and print a+b.
section .bss
    buf resb 256
    outbuf resb 32

section .text
    global _start

_start:
    xor eax, eax
    xor edi, edi
    lea rsi, [rel buf]
    mov edx, 255
    syscall
    mov byte [rsi + rax], 0
    call parse              ; rsi -> after first number, rax = value
    mov r12, rax
    call parse
    add rax, r12
    call print
    mov eax, 60
    xor edi, edi
    syscall

; parse: skip blanks, optional '-', digits. In: rsi. Out: rax, rsi advanced.
parse:
    xor eax, eax
    xor r8d, r8d
.skip:
    movzx ecx, byte [rsi]
    cmp cl, ' '
    je .next
    cmp cl, 9
    je .next
    cmp cl, 10
    je .next
    cmp cl, '-'
    jne .digits
    mov r8d, 1
.next:
    inc rsi
    jmp .skip
.digits:
    movzx ecx, byte [rsi]
    sub ecx, '0'
    cmp ecx, 9
    ja .end
    imul rax, rax, 10
    add rax, rcx
    inc rsi
    jmp .digits
.end:
    test r8d, r8d
    jz .ret
    neg rax
.ret:
    ret

; print rax as a signed decimal followed by a newline.
print:
    lea rdi, [rel outbuf + 31]
    mov byte [rdi], 10
    mov r9, rax
    test rax, rax
    jns .conv
    neg rax
.conv:
    mov r10, 10
.loop:
    xor edx, edx
    div r10
    add dl, '0'
    dec rdi
    mov [rdi], dl
    test rax, rax
    jnz .loop
    test r9, r9
    jns .emit
    dec rdi
    mov byte [rdi], '-'
.emit:
    lea rdx, [rel outbuf + 32]
    sub rdx, rdi
    mov rsi, rdi
    mov eax, 1
    mov edi, 1
    syscall
    ret
