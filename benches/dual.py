"""Dual-run benchmark driver; run through benches/dual.sh (see there)."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The trivial builds of docs/nondeterminism.md §4 (det and nd_date).
TRIVIAL = {
    "det": (
        "mkdir -p out; echo hello > out/hello.txt; "
        'tar --sort=name --mtime="@${SOURCE_DATE_EPOCH:-0}" --owner=0 --group=0 '
        "--numeric-owner --mode=go-w -cf out/src.tar data\n"
    ),
    "nd_date": "mkdir -p out; date +%s%N > out/stamp.txt; echo hello > out/hello.txt\n",
}
# Expected exit statuses: (hermetic, reprotest).
EXPECTED = {"det": (0, 0), "nd_date": (3, 1)}

SPIN_C = r"""
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    unsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : 0;
    unsigned long x = 88172645463325252UL;
    for (unsigned long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    printf("%lu\n", x);
    return 0;
}
"""
SPIN_BUILD = (
    "set -eu\nmkdir -p out\ngcc -O2 -o spin spin.c\n"
    './spin "$(cat iterations)" > out/result\n'
)


def timed(argv, cwd, expect):
    start = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != expect:
        sys.exit(
            f"{argv[0]} exited {proc.returncode}, expected {expect}\n"
            f"{proc.stdout.decode(errors='replace')[-2000:]}\n{proc.stderr.decode(errors='replace')[-2000:]}"
        )
    return elapsed, proc.stdout


def fmt(values):
    return f"{statistics.median(values):7.3f} s [{min(values):.3f}-{max(values):.3f}]"


def hermetic_build(hermetic, src, work, extra):
    artifact = os.path.join(work, "artifact.tar.zst")
    for leftover in (artifact, artifact + ".diffoscope.txt", artifact + ".explain.txt"):
        if os.path.exists(leftover):
            os.remove(leftover)
    return [hermetic, "build", "--json", "--src", src, "--artifact", artifact, *extra,
            "--", "sh", "build.sh"]


def trivial(hermetic, runs, work):
    print(f"== 1. time to verdict, trivial build: hermetic build vs reprotest (median of {runs}, interleaved)")
    print(f"{'build':<8} {'tool':<10} {'median [min-max]':<28} exit")
    ratios = {}
    for name, script in TRIVIAL.items():
        src = os.path.join(work, name)
        os.makedirs(os.path.join(src, "data"))
        for i in range(8):
            with open(os.path.join(src, "data", f"f{i}"), "w") as f:
                f.write(f"file {i}\n")
        with open(os.path.join(src, "build.sh"), "w") as f:
            f.write(script)
        h_expect, r_expect = EXPECTED[name]
        ours, theirs = [], []
        for _ in range(runs):
            elapsed, _ = timed(hermetic_build(hermetic, src, work, []), work, h_expect)
            ours.append(elapsed)
            # reprotest copies the current directory as the source tree; keep it clean.
            shutil.rmtree(os.path.join(src, "out"), ignore_errors=True)
            elapsed, _ = timed(["reprotest", "sh build.sh", "out/*"], src, r_expect)
            theirs.append(elapsed)
        print(f"{name:<8} {'hermetic':<10} {fmt(ours):<28} {h_expect}")
        print(f"{name:<8} {'reprotest':<10} {fmt(theirs):<28} {r_expect}")
        ratios[name] = statistics.median(theirs) / statistics.median(ours)
    for name, ratio in ratios.items():
        print(f"ratio reprotest/hermetic ({name}): {ratio:.1f}x")


def calibrate(work, seconds):
    """Iterations of the spin loop that take about `seconds` on the host (fastest of 3)."""
    spin_c = os.path.join(work, "spin.c")
    with open(spin_c, "w") as f:
        f.write(SPIN_C)
    binary = os.path.join(work, "spin-host")
    subprocess.run(["gcc", "-O2", "-o", binary, spin_c], check=True)
    probe = 500_000_000
    elapsed = min(timed([binary, str(probe)], work, 0)[0] for _ in range(3))
    return binary, int(probe * seconds / elapsed)


def host_concurrency(binary, iterations, work):
    """Wall time of two spin processes on separate CPUs over one alone, on the bare host:
    what two concurrent runs cost on this machine before any sandbox is involved."""
    alone = timed([binary, str(iterations)], work, 0)[0]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(["taskset", "-c", str(cpu), binary, str(iterations)],
                         stdout=subprocess.DEVNULL)
        for cpu in sorted(os.sched_getaffinity(0))[:2]
    ]
    for proc in procs:
        proc.wait()
    return (time.perf_counter() - start) / alone


def cpu_bound(hermetic, runs, seconds, work):
    binary, iterations = calibrate(work, seconds)
    slowdown = host_concurrency(binary, iterations // 5, work)
    src = os.path.join(work, "spin")
    os.makedirs(src)
    shutil.copy(os.path.join(work, "spin.c"), src)
    with open(os.path.join(src, "iterations"), "w") as f:
        f.write(f"{iterations}\n")
    with open(os.path.join(src, "build.sh"), "w") as f:
        f.write(SPIN_BUILD)
    print(f"\n== 2. CPU-bound single-threaded build (~{seconds} s, {iterations} iterations): "
          f"dual vs single (median of {runs}, interleaved)")
    single, dual, run_ms = [], [], []
    for _ in range(runs):
        elapsed, _ = timed(hermetic_build(hermetic, src, work, ["--single"]), work, 0)
        single.append(elapsed)
        elapsed, out = timed(hermetic_build(hermetic, src, work, []), work, 0)
        dual.append(elapsed)
        report = json.loads(out)
        run_ms.append([r["duration_ms"] for r in report["runs"]])
    single_m, dual_m = statistics.median(single), statistics.median(dual)
    print(f"single  {fmt(single)}")
    print(f"dual    {fmt(dual)}   (per-run durations a/b in ms: {run_ms})")
    print(f"ratio dual/single: {dual_m / single_m:.3f}")
    bound = 1.1 * single_m + 1.0
    verdict = "yes" if dual_m <= bound else "NO"
    print(f"dual <= 1.1 x single + 1 s: {verdict} ({dual_m:.2f} s vs bound {bound:.2f} s)")
    note = (" - above 1.1, so this box cannot run two CPU-bound processes at full speed right now"
            " and a dual run cannot either" if slowdown > 1.1 else "")
    print(f"host baseline, no sandbox: two concurrent single-threaded processes on separate CPUs "
          f"took {slowdown:.2f}x the wall time of one{note}")
    return dual_m <= bound


def main():
    hermetic, runs, cpu_runs, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    print(f"machine: {os.cpu_count()} CPUs, {os.uname().release}; hermetic: {hermetic}")
    print("load average at start: %.2f %.2f %.2f (other work on the box skews both parts)" % os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="hermetic-bench-dual") as work:
        trivial(hermetic, runs, work)
        ok = cpu_bound(hermetic, cpu_runs, seconds, work)
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
