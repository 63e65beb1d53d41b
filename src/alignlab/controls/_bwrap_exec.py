"""Exec shim for the bubblewrap engine (standard library only: run as `python -I -S _bwrap_exec.py CONFIG -- ARGV`).

It moves itself into the run's cgroups (so bubblewrap and everything the command forks are
counted there), sets the per-process resource limits (setrlimit, what `prlimit` does),
then execs ARGV: `bwrap ... -- COMMAND`, or COMMAND itself on the explicit unconfined path. Under bubblewrap the
command is preceded by the sandbox's inner stage (_sandbox_init.py: Landlock and the exec-notify filter, applied
inside the sandbox once bubblewrap has built it), passed as source with landlock.py because the package is not
visible in there. On failure it writes one JSON object with "error" to the status descriptor and exits 125, so
nothing runs outside the limits it was promised.
"""

import json
import os
import resource
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Loads landlock.py as the module `landlock`, then runs _sandbox_init.py as __main__ (argv: -c LL INIT -- CMD...).
BOOT = ("import sys, types\n"
        "m = sys.modules['landlock'] = types.ModuleType('landlock')\n"
        "exec(compile(sys.argv[1], 'landlock.py', 'exec'), m.__dict__)\n"
        "src = sys.argv[2]; del sys.argv[1:3]\n"
        "exec(compile(src, '_sandbox_init.py', 'exec'), {'__name__': '__main__'})\n")


def inner_stage() -> list[str]:
    """The argv prefix that runs _sandbox_init.py inside the sandbox, before the command."""
    sources = []
    for name in ("landlock.py", "_sandbox_init.py"):
        with open(os.path.join(HERE, name), encoding="utf-8") as fh:
            sources.append(fh.read())
    return [sys.executable, "-I", "-S", "-c", BOOT, *sources, "--"]


def main():
    cfg = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    status_fd = cfg["status_fd"]

    def fail(msg):
        os.write(status_fd, json.dumps({"error": msg}).encode())
        os.write(2, f"alignlab-sandbox: {msg}\n".encode())
        os._exit(125)

    for path in cfg.get("cgroup_procs", []):
        try:
            with open(path, "w") as fh:
                fh.write(str(os.getpid()))
        except OSError as exc:
            fail(f"cannot join cgroup {os.path.dirname(path)}: {exc.strerror}")
    for name, value in cfg.get("rlimits", {}).items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError) as exc:
            fail(f"cannot set {name}: {exc}")
    if cfg.get("bwrap"):
        try:
            cut = int(cfg["command_at"])
            if not 0 < cut <= len(argv) or argv[cut - 1] != "--":
                raise ValueError(f"the command does not start at argv[{cut}]")
            argv = argv[:cut] + inner_stage() + argv[cut:]
        except (KeyError, ValueError, OSError) as exc:
            fail(f"cannot prepare the sandbox's inner stage: {exc}")
    if not cfg.get("bwrap"):  # unconfined: the status descriptor is not the command's business
        os.close(status_fd)
    try:
        os.execvpe(argv[0], argv, os.environ)
    except OSError as exc:
        if cfg.get("bwrap"):
            fail(f"cannot run bubblewrap {argv[0]!r}: {exc.strerror}")
        os.write(2, f"alignlab-sandbox: cannot run {argv[0]!r}: {exc.strerror}\n".encode())
        os._exit(127)


if __name__ == "__main__":
    main()
