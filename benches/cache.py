"""Timing for benches/cache.sh: verified restore vs tar + b3sum on the same archive, and
cache save vs tar --sort=name | zstd -T0 -3 on the same tree."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv, **kwargs):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def copies_of(dirs):
    """Shell commands that copy `dirs` into out/. Symlinks are dropped (many host ones are
    absolute, and an entry with a symlink out of its tree is never cached); unreadable
    entries are skipped."""
    return " ".join(
        f"cp -r {d} out/{i} 2>/dev/null;" for i, d in enumerate(dirs)
    ) + " find out -type l -delete;"


def build_entry(hermetic, work, dirs):
    """Stores the entry of a build whose outputs are copies of `dirs` in a cache under
    `work`, and prints its size: (cache dir, state dir, source dir, key, archive path)."""
    cache, state, src = (os.path.join(work, name) for name in ("cache", "state", "src"))
    os.mkdir(src)
    copies = copies_of(dirs)
    build = subprocess.run(
        [hermetic, "build", "--single", "--json", "--src", src,
         "--artifact", os.path.join(work, "built.tar.zst"),
         "--cache-dir", cache, "--state-dir", state, "--cache-single-run",
         "--", "sh", "-c", f"mkdir -p out; {copies} true"],
        check=True, capture_output=True, env=dict(os.environ, HERMETIC_NO_DAEMON="1"),
    )
    report = json.loads(build.stdout)
    key = report["cache"]["key"]
    assert report["cache"]["stored"], report["cache"]
    archive = os.path.join(cache, "scopes", "local", key, "archive.tar.zst")
    tree_bytes = sum(f["size"] for f in report["output"]["files"])
    print(f"entry: {len(report['output']['files'])} entries, {tree_bytes / 1e6:.0f} MB of "
          f"files, archive {os.path.getsize(archive) / 1e6:.0f} MB")
    return cache, state, src, key, archive


def main():
    hermetic, runs, dirs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    work = tempfile.mkdtemp(prefix="hermetic-cache-bench-", dir="/var/tmp")
    try:
        cache, state, src, key, archive = build_entry(hermetic, work, dirs)
        env = dict(os.environ, HERMETIC_NO_DAEMON="1")

        times = {"hermetic": [], "baseline": [], "tar": []}
        for run in range(runs):
            for name in times:
                dest = os.path.join(work, f"dest-{name}-{run}")
                # Start each from the same state: the previous run's writes on disk.
                os.sync()
                if name == "hermetic":
                    took = timed([hermetic, "cache", "restore", "--cache-dir", cache,
                                  "--state-dir", state, key, "--dest", dest])
                else:
                    os.mkdir(dest)
                    took = timed(["tar", "--zstd", "-xf", archive, "-C", dest])
                    if name == "baseline":
                        took += timed(["b3sum", archive])
                times[name].append(took)
                shutil.rmtree(dest)
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, values in times.items():
            print(f"{name:<9} median {medians[name]:.3f} s  "
                  f"(min {min(values):.3f}, max {max(values):.3f}, {runs} runs)")
        print(f"hermetic / baseline (tar --zstd -xf + b3sum): "
              f"{medians['hermetic'] / medians['baseline']:.2f}x")
        print(f"hermetic / tar --zstd -xf alone:             "
              f"{medians['hermetic'] / medians['tar']:.2f}x")
        save(hermetic, runs, work, src, copies_of(dirs), env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def save(hermetic, runs, work, src, copies, env):
    """Cache save: a single build that copies the tree into out/ (in its tmpfs build dir),
    then packs, hashes every file, signs and stores the entry, against the same copy into
    a tmpfs directory followed by `tar --sort=name -cf - out | zstd -T0 -3`."""
    shm = tempfile.mkdtemp(prefix="hermetic-cache-bench-", dir="/dev/shm")
    times = {"hermetic": [], "baseline": []}
    try:
        for run in range(runs):
            for name in times:
                os.sync()
                if name == "hermetic":
                    took = timed(
                        [hermetic, "build", "--single", "--src", src,
                         "--artifact", os.path.join(work, f"save-{run}.tar.zst"),
                         "--cache-dir", os.path.join(work, f"save-cache-{run}"),
                         "--state-dir", os.path.join(work, "state"), "--cache-single-run",
                         "--", "sh", "-c", f"mkdir -p out; {copies} true"],
                        stderr=subprocess.DEVNULL, env=env)
                else:
                    took = timed(
                        ["sh", "-c", f"mkdir -p out; {copies} "
                         f"tar --sort=name -cf - out | zstd -T0 -3 -q > {work}/save-{run}.tar.zst"],
                        cwd=shm)
                    shutil.rmtree(os.path.join(shm, "out"))
                times[name].append(took)
                os.remove(os.path.join(work, f"save-{run}.tar.zst"))
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print("== cache save (copy the tree, archive it; hermetic also hashes, signs, stores)")
    for name, values in times.items():
        print(f"{name:<9} median {medians[name]:.3f} s  "
              f"(min {min(values):.3f}, max {max(values):.3f}, {runs} runs)")
    print(f"hermetic / baseline (copy + tar --sort=name | zstd -T0 -3): "
          f"{medians['hermetic'] / medians['baseline']:.2f}x (goal <= 1.1x)")


if __name__ == "__main__":
    main()
