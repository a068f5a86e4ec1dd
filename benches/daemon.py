"""Daemon against in-process runs, throughput and idle RSS; see daemon.sh."""
import concurrent.futures
import json
import statistics
import subprocess
import sys
import time

runs, jobs, hermetic, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
true = ["run", "--src", src, "--", "/bin/true"]


def call(args):
    subprocess.run([hermetic, *args], check=True, stdin=subprocess.DEVNULL)


def status():
    out = subprocess.run([hermetic, "daemon", "status", "--json"], capture_output=True, check=True)
    return json.loads(out.stdout)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def footprint_mb(pid):
    """The daemon's RSS plus its sandbox zygote's (a child it starts to fork helpers)."""
    total = rss_mb(pid)
    for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
        try:
            argv = open(f"/proc/{child}/cmdline", "rb").read().split(b"\0")
        except FileNotFoundError:
            continue
        if b"__hermetic-sandbox-zygote" in argv:
            total += rss_mb(child)
    return total


def wait_idle():
    while True:
        health = status()["health"]
        if health["running"] == 0 and health["queued"] == 0:
            return
        time.sleep(0.05)


call(true)  # autostarts the daemon (and warms both paths)
call(["--no-daemon", *true])
pid = status()["pid"]
fresh_rss = footprint_mb(pid)

variants = {"via daemon": true, "--no-daemon": ["--no-daemon", *true]}
samples = {name: [] for name in variants}
for _ in range(runs):
    for name, args in variants.items():
        start = time.perf_counter()
        call(args)
        samples[name].append((time.perf_counter() - start) * 1000)

print(f"hermetic run -- /bin/true, {runs} interleaved runs each (ms)")
print(f"{'variant':<16}{'min':>8}{'median':>9}{'p90':>9}")
for name, values in samples.items():
    values.sort()
    p90 = values[int(len(values) * 0.9) - 1]
    print(f"{name:<16}{values[0]:>8.2f}{statistics.median(values):>9.2f}{p90:>9.2f}")
ratio = statistics.median(samples["via daemon"]) / statistics.median(samples["--no-daemon"])
print(f"ratio daemon / in-process (medians): {ratio:.2f}  (goal <= 1.2)")

start = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
    list(pool.map(lambda _: call(true), range(jobs)))
elapsed = time.perf_counter() - start
print(f"throughput: {jobs} trivial jobs from 8 clients, 2 workers: {elapsed:.2f} s, "
      f"{jobs / elapsed:.1f} jobs/s  (goal >= 50)")

wait_idle()
print(f"daemon idle RSS (with its zygote): {fresh_rss:.1f} MB fresh, "
      f"{footprint_mb(pid):.1f} MB after the load  (goal <= 20)")
