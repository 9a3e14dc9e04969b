"""Network and IPC egress (catalogue sections 10 and 13 as far as one box goes): interfaces, host
listeners on loopback and on the host address, metadata, DNS, abstract and filesystem UNIX sockets,
exotic socket families, SysV and POSIX IPC. The `adv` fixture asserts the host listeners got nothing."""

from __future__ import annotations

from stockade_adv_harness import describe, parse_kv

from stockade.sandbox import Status


async def test_only_loopback_exists_and_no_host_socket_is_listed(adv):
    r = await adv.run_c("net_ifaces")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["getifaddrs"] == "EAFNOSUPPORT", describe(r)  # netlink is refused
    assert out["ifaces"] == "lo," and out["up_lo"] == "1", describe(r)
    for name in ("eth0", "ens3", "docker0", "wlan0", "tap0", "veth0"):
        assert out[f"ifindex_{name}"] == "ENODEV", (name, describe(r))
    assert out["lines_dev"] == "3" and out["lines_route"] == "1", describe(r)
    for table in ("tcp", "tcp6", "udp", "unix"):
        assert out[f"lines_{table}"] == "1", (table, describe(r))


async def test_host_listeners_metadata_and_host_sockets_are_unreachable(adv):
    lst = adv.listeners
    r = await adv.run_c("net_connect", str(lst.tcp_port), str(lst.udp_port), lst.host_ip, lst.abstract_name)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["tcp_loopback"] == out["tcp_postgres_local"] == "ECONNREFUSED", describe(r)
    assert out["tcp_loopback6"] in ("ECONNREFUSED", "EADDRNOTAVAIL", "ENETUNREACH"), describe(r)
    for key in ("tcp_host_ip", "tcp_metadata", "tcp_public", "tcp_private", "udp_host_ip", "udp_dns"):
        assert out[key] == "ENETUNREACH", (key, describe(r))
    assert out["udp_loopback"] == "OK", describe(r)  # sent into the box's own loopback: nobody there
    assert out["unix_abstract_host"] == "ECONNREFUSED", describe(r)  # abstract names are per network ns
    assert out["unix_postgres"] == out["unix_docker"] == out["unix_dbus"] == "ENOENT", describe(r)
    assert out["bind_same_port"] == "OK", describe(r)
    assert adv.listeners.hits == {"tcp": 0, "udp": 0, "unix": 0}


async def test_exotic_socket_families_are_refused(adv):
    r = await adv.run_c("net_families")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key, value in out.items():
        if key.startswith(("socket_", "socketpair_")) and not key.startswith(
            ("socket_inet", "socket_unix", "socket_ping")
        ):
            assert value == "EAFNOSUPPORT", (key, describe(r))
    assert out["socket_inet_raw"] == out["socket_inet6_raw"] == "EPERM", describe(r)
    assert out["socket_ping"] == "EACCES", describe(r)
    assert out["socket_unix_ok"] == out["socket_inet_ok"] == "OK", describe(r)


async def test_dns_resolution_has_no_path_out(adv):
    r = await adv.run_c("net_dns")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("resolve_canary", "resolve_metadata", "resolve_public"):
        assert out[key] in ("EAI_NONAME", "EAI_AGAIN"), (key, describe(r))
    assert out["resolve_localhost"] == out["resolve_self"] == "OK", describe(r)
    assert out["open_resolv_conf"] == out["open_nscd"] == "ENOENT", describe(r)


async def test_python_reverse_shell_cannot_phone_home(adv):
    lst = adv.listeners
    r = await adv.run_script("net_reverse_shell.py", str(lst.tcp_port), str(lst.udp_port), lst.host_ip)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["loopback"] == "ConnectionRefusedError:111", describe(r)
    assert out["host"].endswith(":101") and out["metadata"].endswith(":101") and out["public"].endswith(":101"), (
        describe(r)
    )  # ENETUNREACH
    assert out["dns"] == "gaierror" and out["done"] == "1" and b"CONNECTED" not in r.stderr, describe(r)


async def test_sysv_ipc_is_not_shared_between_concurrent_boxes(adv):
    holder, probe = await adv.gather(adv.c_spec("ipc_sysv", "hold", wall_ms=1500), adv.c_spec("ipc_sysv", "probe"))
    assert holder.status is Status.TIMEOUT and "shm" in parse_kv(holder.stdout), describe(holder)
    assert probe.status is Status.OK, describe(probe)
    out = parse_kv(probe.stdout)
    assert out["shmget_key"] == out["msgget_key"] == out["semget_key"] == "ENOENT", describe(probe)
    assert out["shm_used_ids"] == "0" and out["msg_queues"] == "0" and out["shmat_guessed"] == "0", describe(probe)


async def test_sysv_ipc_does_not_survive_into_the_next_run(adv):
    left = await adv.run_c("ipc_sysv", "leave")
    assert left.status is Status.OK and parse_kv(left.stdout)["semget_create"] == "OK", describe(left)
    probe = await adv.run_c("ipc_sysv", "probe")
    out = parse_kv(probe.stdout)
    assert out["shmget_key"] == out["msgget_key"] == out["semget_key"] == "ENOENT", describe(probe)
    assert out["shm_used_ids"] == "0", describe(probe)


async def test_posix_message_queues_and_abstract_sockets_stay_in_the_box(adv):
    r = await adv.run_c("ipc_posix_mq")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["mq_open_create"] == "EMFILE", describe(r)  # RLIMIT_MSGQUEUE is 0
    assert out["mq_open_existing"] == "ENOENT" and out["open_dev_mqueue"] == "ENOENT", describe(r)
    assert out["bind_abstract"] == "OK", describe(r)  # in the box's own network namespace
    again = await adv.run_c("ipc_posix_mq")
    assert parse_kv(again.stdout)["bind_abstract"] == "OK", describe(again)  # the name did not persist
