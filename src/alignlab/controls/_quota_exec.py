"""Exec shim for the workspace quota (standard library only: `python -I -S _quota_exec.py CONFIG -- ARGV`).

It makes a private mount namespace (unshare(2) CLONE_NEWNS, every mount made private so nothing
propagates back to the host), mounts an overlay over the workspace whose upper layer lives on the
quota's size-limited tmpfs (see quota.py), and execs ARGV (bubblewrap), which binds the overlay as the
workspace. The layers are named as /proc/self/fd/N of descriptors opened here, so no path needs
escaping in the mount options. On failure it writes one JSON object with "error" to the status
descriptor and exits 125: the command never runs without the quota it was promised.
"""

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def main():
    cfg = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    status_fd = cfg["status_fd"]
    libc = ctypes.CDLL(None, use_errno=True)

    def fail(msg):
        os.write(status_fd, json.dumps({"error": msg}).encode())
        os.write(2, f"alignlab-sandbox: {msg}\n".encode())
        os._exit(125)

    def check(rc, what):
        if rc != 0:
            err = ctypes.get_errno()
            fail(f"workspace quota: {what}: {os.strerror(err)}")

    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
    try:
        fds = {k: os.open(cfg[k], os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW) for k in ("workspace", "upper", "work")}
    except OSError as exc:
        fail(f"workspace quota: cannot open {exc.filename}: {exc.strerror}")
    opts = (f"lowerdir=/proc/self/fd/{fds['workspace']},upperdir=/proc/self/fd/{fds['upper']},"
            f"workdir=/proc/self/fd/{fds['work']},redirect_dir=off,index=off,metacopy=off,xino=off")
    check(libc.mount(b"alignlab-workspace", os.fsencode(cfg["workspace"]), b"overlay", 0, opts.encode()),
          "mounting the overlay on the workspace")
    for fd in fds.values():
        os.close(fd)
    try:
        os.execvpe(argv[0], argv, os.environ)
    except OSError as exc:
        fail(f"cannot run {argv[0]!r}: {exc.strerror}")


if __name__ == "__main__":
    main()
