/* K-09: exec a 32-bit binary. The ELF below is written by hand here (52-byte header, one PT_LOAD) and
 * only runs `mov eax,20 (getpid); int 0x80; mov eax,1 (exit); mov ebx,7; int 0x80`. The execve is a
 * 64-bit call; the 32-bit process's first syscall must be killed by the architecture check. */
#include "adv.h"
#include <stdint.h>

int main(int argc, char **argv, char **envp) {
    unsigned char elf[128] = {0};
    uint32_t base = 0x08048000, entry = base + 84;
    unsigned char *e = elf;
    memcpy(e, "\x7f" "ELF", 4);
    e[4] = 1; /* ELFCLASS32 */
    e[5] = 1; /* little endian */
    e[6] = 1; /* EV_CURRENT */
    *(uint16_t *)(e + 16) = 2;     /* ET_EXEC */
    *(uint16_t *)(e + 18) = 3;     /* EM_386 */
    *(uint32_t *)(e + 20) = 1;     /* version */
    *(uint32_t *)(e + 24) = entry; /* e_entry */
    *(uint32_t *)(e + 28) = 52;    /* e_phoff */
    *(uint16_t *)(e + 40) = 52;    /* e_ehsize */
    *(uint16_t *)(e + 42) = 32;    /* e_phentsize */
    *(uint16_t *)(e + 44) = 1;     /* e_phnum */
    unsigned char *ph = e + 52;
    *(uint32_t *)(ph + 0) = 1;     /* PT_LOAD */
    *(uint32_t *)(ph + 4) = 0;     /* p_offset */
    *(uint32_t *)(ph + 8) = base;  /* p_vaddr */
    *(uint32_t *)(ph + 12) = base; /* p_paddr */
    *(uint32_t *)(ph + 16) = sizeof elf;
    *(uint32_t *)(ph + 20) = sizeof elf;
    *(uint32_t *)(ph + 24) = 5;    /* R|X */
    *(uint32_t *)(ph + 28) = 0x1000;
    const unsigned char code[] = {0xb8, 20, 0, 0, 0, 0xcd, 0x80,          /* getpid */
                                  0xb8, 1, 0, 0, 0, 0xbb, 7, 0, 0, 0, 0xcd, 0x80}; /* exit(7) */
    memcpy(e + 84, code, sizeof code);
    int fd = open("tiny32", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    write_all(fd, elf, sizeof elf);
    close(fd);
    SAY("exec32=1\n");
    char *args[] = {"tiny32", NULL};
    execve("./tiny32", args, envp);
    SAY("execve=%s\n", ename(errno));
    return 0;
}
