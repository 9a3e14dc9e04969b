/* NET-05/NET-06/NET-07: socket families beyond unix/inet/inet6 (module autoload and memory-corruption
 * history), raw and ping sockets, and families smuggled in the upper 32 bits of the argument. */
#include "adv.h"
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

int main(void) {
    struct {
        int family, type, proto;
        const char *name;
    } f[] = {
        {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "netlink_route"},
        {AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, "netlink_audit"},
        {AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT, "netlink_uevent"},
        {AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER, "netlink_netfilter"},
        {AF_PACKET, SOCK_RAW, 0, "packet_raw"},
        {AF_PACKET, SOCK_DGRAM, 0, "packet_dgram"},
        {40 /* AF_VSOCK */, SOCK_STREAM, 0, "vsock"},
        {38 /* AF_ALG */, SOCK_SEQPACKET, 0, "alg"},
        {31 /* AF_BLUETOOTH */, SOCK_RAW, 0, "bluetooth"},
        {21 /* AF_RDS */, SOCK_SEQPACKET, 0, "rds"},
        {30 /* AF_TIPC */, SOCK_RDM, 0, "tipc"},
        {15 /* AF_KEY */, SOCK_RAW, 2, "pfkey"},
        {44 /* AF_XDP */, SOCK_RAW, 0, "xdp"},
        {29 /* AF_CAN */, SOCK_RAW, 1, "can"},
        {9 /* AF_X25 */, SOCK_SEQPACKET, 0, "x25"},
        {4 /* AF_IPX */, SOCK_DGRAM, 0, "ipx"},
        {5 /* AF_APPLETALK */, SOCK_DGRAM, 0, "appletalk"},
        {3 /* AF_AX25 */, SOCK_SEQPACKET, 0, "ax25"},
        {0 /* AF_UNSPEC */, SOCK_STREAM, 0, "unspec"},
        {45 /* AF_MCTP */, SOCK_DGRAM, 0, "mctp"},
        {46, SOCK_DGRAM, 0, "family46"},
        {255, SOCK_DGRAM, 0, "family255"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "socket_%s", f[i].name);
        TRY(label, socket(f[i].family, f[i].type, f[i].proto));
        int sv[2];
        snprintf(label, sizeof label, "socketpair_%s", f[i].name);
        TRY(label, socketpair(f[i].family, f[i].type, f[i].proto, sv));
    }
    /* The kernel reads `int family`; a filter comparing 64-bit values must not be fooled. */
    TRY("socket_netlink_highbits", syscall(SYS_socket, 0x100000000UL | AF_NETLINK, SOCK_RAW, 0));
    TRY("socket_packet_negative", syscall(SYS_socket, 0xffffffff00000000UL | AF_PACKET, SOCK_RAW, 0));
    TRY("socket_inet_raw", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    TRY("socket_inet6_raw", socket(AF_INET6, SOCK_RAW, IPPROTO_RAW));
    TRY("socket_ping", socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    TRY("socket_unix_ok", socket(AF_UNIX, SOCK_STREAM, 0));
    TRY("socket_inet_ok", socket(AF_INET, SOCK_STREAM, 0));
    return 0;
}
