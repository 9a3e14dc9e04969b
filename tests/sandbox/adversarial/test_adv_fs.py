"""Host-side file handling (catalogue section 1): symlinks, hard links, FIFOs, devices, hostile names and
trees, pre-planted links and persistence. Copy-out (collect_files=True) must never follow, block or leak;
teardown must always succeed. The `adv` fixture checks the global host oracle after every test."""

from __future__ import annotations

import json
import os

from stockade_adv_harness import ESCAPE_MARKER, describe, parse_kv

from stockade.sandbox import BoxSpec, InputFile, Status


def _names(r) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.path for f in r.files}


async def test_symlinks_to_host_files_devices_and_dirs_are_not_followed(adv):
    r = await adv.run_c("fs_symlink_host", str(adv.secrets.root_canary), str(adv.secrets.usr_sentinel), collect=True)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["made"] == "17", describe(r)
    links = {"out.txt", "shadow", "canary_etc", "canary_root", "sentinel", "environ", "init_environ", "cwd",
             "relative", "zero", "urandom", "rootdir", "roothome", "etcdir", "loop1", "loop2", "dangling",
             "sub/passwd", "sub/up"}  # fmt: skip
    assert links <= set(r.files_skipped), describe(r)
    assert _names(r) == {"fs_symlink_host"}, describe(r)
    host_passwd = open("/etc/passwd", "rb").read()  # noqa: SIM115
    for f in r.files:
        assert host_passwd not in f.content and b"root:x:0:0" not in f.content


async def test_symlink_exchange_race_left_running_after_exit(adv):
    r = await adv.run_c("fs_symlink_swap", "exit", collect=True)
    assert r.status is Status.OK, describe(r)
    assert parse_kv(r.stdout)["exchange_probe"] == "OK"
    by_name = {f.path: f.content for f in r.files}
    # Whatever state the swapper froze in, only the box's own bytes come back.
    for name, content in by_name.items():
        if name != "fs_symlink_swap":
            assert content in (b"benign-data\n", b"benign-inner\n"), (name, content)
    assert {"data", "link"} & (set(by_name) | set(r.files_skipped)) == {"data", "link"}


async def test_symlink_exchange_race_until_wall_timeout(adv):
    r = await adv.run_c("fs_symlink_swap", "stay", collect=True, wall_ms=1500, cpu_ms=3000)
    assert r.status is Status.TIMEOUT, describe(r)
    for f in r.files:
        if f.path != "fs_symlink_swap":
            assert f.content in (b"benign-data\n", b"benign-inner\n"), (f.path, f.content)


async def test_hard_links_to_host_and_devices_fail_with_exdev(adv):
    r = await adv.run_c("fs_hardlink", str(adv.secrets.usr_sentinel), collect=True)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("link_passwd", "link_rm", "link_sh", "link_null", "link_zero", "link_sentinel", "link_proc_exe"):
        assert out[key] == "EXDEV", (key, describe(r))
    assert out["linkat_empty_path"] in ("ENOENT", "EXDEV", "EPERM"), describe(r)
    assert out["linkat_proc_fd"] in ("EXDEV", "EPERM"), describe(r)
    assert out["link_own"] == "OK"
    assert _names(r) == {"fs_hardlink", "own", "own_link"}, describe(r)


async def test_fifo_and_socket_outputs_do_not_block_copy_out(adv):
    r = await adv.run_c("fs_fifo", collect=True)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["mkfifo_out"] == out["mknod_fifo"] == out["bind_sock"] == "OK", describe(r)
    assert {"out.fifo", "result.txt", "nested/stdout", "out.sock"} <= set(r.files_skipped), describe(r)
    assert _names(r) == {"fs_fifo"}
    assert r.wall_time_ms < 5000, describe(r)


async def test_hostile_file_names_are_collected_verbatim_and_never_executed(adv):
    r = await adv.run_c("fs_hostile_names", collect=True)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["created"] == "24", describe(r)
    assert out["create_255"] == "OK" and out["create_299"] == "ENAMETOOLONG" and out["create_empty"] == "ENOENT"
    raw = {os.fsencode(f.path): f.content for f in r.files}
    for name in (b"-rf", b"a\nb", b"$(cd;touch stockade-adv-pwn-dollar)", b"\xff\xfe invalid utf8", b"*"):
        assert raw[name] == name, name
    assert b"L" * 255 in raw
    # The result is still representable as JSON (bytes decoded with replacement).
    json.dumps(r.to_json())
    for d in ("/tmp", "/", "/root"):
        assert not any(ESCAPE_MARKER in n for n in os.listdir(d) if os.path.isdir(d))


async def test_hostile_names_round_trip_into_a_second_box(adv):
    """The engine feeds compile outputs into the run box: hostile names must stay inside the new box."""
    first = await adv.run_c("fs_hostile_names", collect=True)
    assert first.status is Status.OK, describe(first)
    inputs = [InputFile(f.path, f.content, f.executable) for f in first.files if f.path != "fs_hostile_names"]
    count = "import os; print(sum(len(f) for _, _, f in os.walk(b'/box')), len(os.listdir('/tmp')))"
    second = await adv.run_spec(BoxSpec(argv=["/usr/bin/python3", "-c", count], files=inputs, limits=adv.limits()))
    assert second.status is Status.OK, describe(second)
    assert second.stdout.split() == [str(len(inputs)).encode(), b"0"], describe(second)


async def test_deep_tree_beyond_path_max_with_mode_000_dirs(adv):
    r = await adv.run_c("fs_deep_tree", collect=True)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert int(out["depth"]) == 150, describe(r)
    assert out["getcwd_deep"] in ("ENAMETOOLONG", "ERANGE"), describe(r)
    assert out["chmod000"] == "done"
    # The walker stops at its depth cap and says so instead of recursing or failing.
    assert any(s.startswith("d" * 200) for s in r.files_skipped), describe(r)


async def test_mode_000_trees_and_immutable_flags_do_not_stop_teardown(adv):
    r = await adv.run_c("fs_chmod_traps", collect=True)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["ioctl_immutable"] in ("EPERM", "ENOTTY", "EOPNOTSUPP"), describe(r)
    assert out["ioctl_append"] in ("EPERM", "ENOTTY", "EOPNOTSUPP"), describe(r)
    assert out["chmod_box"] == "OK" and out["chmod_tmp"] == "OK"
    assert out["chown_box"] in ("EPERM", "EINVAL"), describe(r)  # uid 0 is not even mapped in the box


async def test_symlinks_planted_for_the_next_stage_are_not_followed(adv):
    sentinel = str(adv.secrets.usr_sentinel)
    plant = await adv.run_c("fs_preplant", sentinel, collect=True)
    assert plant.status is Status.OK, describe(plant)
    assert set(parse_kv(plant.stdout).values()) == {"OK"}, describe(plant)
    assert {"input.txt", "fs_check_input", "subdir"} <= set(plant.files_skipped)
    # The next stage gets what the engine would pass on (regular files only) plus its own inputs.
    carried = [InputFile(f.path, f.content, f.executable) for f in plant.files if f.path != "fs_preplant"]
    spec = adv.c_spec(
        "fs_check_input", extra_files=[*carried, InputFile("input.txt", b"fresh"), InputFile("subdir/in.txt", b"sub")]
    )
    r = await adv.run_spec(spec)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["input.txt"] == "regular:fresh" and out["subdir/in.txt"] == "regular:sub", describe(r)
    assert out["tmp_input"] == "ENOENT"


async def test_artefacts_do_not_persist_into_the_next_run(adv):
    w = await adv.run_script("fs_persist_write.sh")
    assert w.status is Status.OK, describe(w)
    out = w.stdout.decode()
    assert "written=1" in out and "wrote=" not in out, describe(w)
    c = await adv.run_script("fs_persist_check.sh")
    assert c.status is Status.OK, describe(c)
    kv = parse_kv(c.stdout)
    assert not any(k == "found" for k in kv), describe(c)
    assert "found=" not in c.stdout.decode(), describe(c)
    assert kv["tmp_listing"] == "" and kv["shm_listing"] == "", describe(c)
    assert kv["box_listing"] == "fs_persist_check.sh", describe(c)
    assert kv["python_ran"] == "1" and b"HIJACKED" not in c.stdout


async def test_read_only_host_files_cannot_be_modified(adv):
    r = await adv.run_c("fs_write_readonly", str(adv.secrets.usr_sentinel))
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert len(out) == 19, describe(r)
    for key, value in out.items():
        assert value in ("EROFS", "EACCES", "EPERM", "ENOENT", "EBUSY"), (key, describe(r))
    for key in ("unlink_sentinel", "create_etc", "create_usr", "create_root", "mkdir_root", "symlink_root"):
        assert out[key] == "EROFS", (key, describe(r))


async def test_only_the_five_safe_devices_exist(adv):
    r = await adv.run_c("fs_devices")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key, value in out.items():
        if key.startswith("open_"):
            assert value == "ENOENT", (key, describe(r))
    assert out["write_full"] == "ENOSPC" and out["write_null"] == "OK"
    assert out["mknod_dev_mem"] in ("EROFS", "EPERM"), describe(r)
    assert out["mknod_box_mem"] == out["mknod_box_sda"] == "EPERM", describe(r)


async def test_procfs_magic_links_lead_back_to_the_box_root(adv):
    r = await adv.run_c("fs_proc_escape")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("dotdot_chain", "proc_self_root", "proc_fd_up", "cwd_up_after_fchdir"):
        assert out[key] == "box_root", (key, describe(r))
    # The box's pid 1 is Stockade's non-dumpable init: its /proc links are closed to the box outright.
    for key in ("proc1_root_up", "proc1_cwd_up"):
        assert out[key] in ("box_root", "EACCES"), (key, describe(r))
    assert out["proc1_root_has_host_dirs"] == "0", describe(r)


async def test_path_traversal_in_input_file_names_is_refused(adv):
    """FS-09: request-supplied names that climb out, are absolute, carry NUL or are empty never land on
    the host: the box is refused before anything runs."""
    for name in ("../stockade-adv-pwn", "/tmp/stockade-adv-pwn", "a/../../stockade-adv-pwn", "x\0y", "", ".", "a//b"):
        spec = BoxSpec(argv=["/bin/true"], files=[InputFile(name, b"pwn")], limits=adv.limits())
        r = await adv.run_spec(spec)
        assert r.status is Status.INTERNAL_ERROR and "invalid box path" in (r.error or ""), (name, describe(r))


async def test_failing_exit_with_links_to_big_host_files_is_a_plain_runtime_error(adv):
    """The file-size verdict for runtimes that ignore SIGXFSZ looks for a big file in the box after a
    failure; symlinks to big host files or host directories must not count (nor be walked)."""
    r = await adv.run_c("fs_big_links_fail")
    assert set(parse_kv(r.stdout).values()) == {"OK"}, describe(r)
    assert r.status is Status.RUNTIME_ERROR and r.exit_code == 3, describe(r)
    assert r.wall_time_ms < 5000, describe(r)
