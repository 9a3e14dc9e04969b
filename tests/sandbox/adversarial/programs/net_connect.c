/* NET-01/NET-03/NET-04/INF-05/INF-06: reach the host: TCP/UDP listeners on host loopback and on the host
 * address, the cloud metadata address, public resolvers, an abstract UNIX socket of the host, and the
 * host's database/docker/dbus sockets. argv: tcp_port udp_port host_ip abstract_name. */
#include "adv.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static int tcp4(const char *ip, int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

static int tcp6(const char *ip, int port) {
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

static int udp4(const char *ip, int port) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int r = (int)sendto(s, "stockade-adv", 12, 0, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

static int unix_connect(const char *path, int abstract) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    socklen_t len;
    if (abstract) {
        strncpy(a.sun_path + 1, path, sizeof a.sun_path - 2);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path));
    } else {
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        len = sizeof a;
    }
    int r = connect(s, (struct sockaddr *)&a, len);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    int tcp = atoi(argv[1]), udp = atoi(argv[2]);
    const char *host = argv[3], *abs_name = argv[4];
    TRY("tcp_loopback", tcp4("127.0.0.1", tcp));
    TRY("tcp_loopback6", tcp6("::1", tcp));
    TRY("tcp_host_ip", tcp4(host, tcp));
    TRY("tcp_metadata", tcp4("169.254.169.254", 80));
    TRY("tcp_public", tcp4("1.1.1.1", 443));
    TRY("tcp_private", tcp4("10.0.0.1", 5432));
    TRY("tcp_postgres_local", tcp4("127.0.0.1", 5432));
    TRY("udp_loopback", udp4("127.0.0.1", udp));
    TRY("udp_host_ip", udp4(host, udp));
    TRY("udp_dns", udp4("8.8.8.8", 53));
    TRY("unix_abstract_host", unix_connect(abs_name, 1));
    TRY("unix_postgres", unix_connect("/run/postgresql/.s.PGSQL.5432", 0));
    TRY("unix_docker", unix_connect("/var/run/docker.sock", 0));
    TRY("unix_dbus", unix_connect("/run/dbus/system_bus_socket", 0));
    /* Listening on the same port inside the box is its own namespace's business. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tcp)};
    TRY("bind_same_port", bind(s, (struct sockaddr *)&a, sizeof a));
    return 0;
}
