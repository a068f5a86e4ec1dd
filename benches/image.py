"""Image import against umoci, and runs in an image against the host profile; see image.sh."""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

hermetic, layout, scratch, imports, runs = sys.argv[1:6]
imports, runs = int(imports), int(runs)
TAG = "bookworm-toolchain"
env = dict(os.environ, HERMETIC_NO_DAEMON="1")


def timed(argv):
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def remove(path):
    if os.path.isdir(path):
        # A stored image has 0555 directories: make them writable before removing.
        subprocess.run(["chmod", "-R", "u+rwx", path], check=True)
        shutil.rmtree(path)


state = os.path.join(scratch, "state")
bundle = os.path.join(scratch, "umoci")
samples = {"hermetic image import": [], "umoci raw unpack": []}
for index in range(imports):
    order = list(samples)
    random.Random(index).shuffle(order)
    for name in order:
        if name == "hermetic image import":
            os.makedirs(state)
            samples[name].append(timed([hermetic, "image", "import", "--allow-setuid",
                                        "--state-dir", state, layout]))
            if index < imports - 1:
                remove(state)
        else:
            samples[name].append(timed(["umoci", "raw", "unpack", "--image",
                                        f"{layout}:{TAG}", bundle]))
            remove(bundle)

base = statistics.median(samples["umoci raw unpack"])
print(f"import of {layout} ({imports} runs each, after a sync; s)")
print(f"{'variant':<26}{'min':>8}{'median':>9}{'x umoci':>9}")
for name, values in samples.items():
    median = statistics.median(values)
    print(f"{name:<26}{min(values):>8.2f}{median:>9.2f}{median / base:>9.2f}")

listed = subprocess.run([hermetic, "image", "ls", "--json", "--state-dir", state], check=True,
                        capture_output=True, env=env)
digest = json.loads(listed.stdout)["images"][0]["digest"]
image = f"debian-toolchain@{digest}"
src = os.path.join(scratch, "src")
os.makedirs(src)
variants = {
    "run --image": [hermetic, "run", "--state-dir", state, "--image", image, "--src", src,
                    "--", "/bin/true"],
    "run (host profile)": [hermetic, "run", "--src", src, "--", "/bin/true"],
}
for argv in variants.values():  # warm-up, and fail early if a variant is broken
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, env=env)
rng = random.Random(1)
times = {name: [] for name in variants}
for _ in range(runs):
    names = list(variants)
    rng.shuffle(names)
    for name in names:
        start = time.perf_counter()
        subprocess.run(variants[name], check=True, stdin=subprocess.DEVNULL, env=env)
        times[name].append((time.perf_counter() - start) * 1000)
base = statistics.median(times["run (host profile)"])
print(f"\nhermetic run --no-daemon -- /bin/true, {runs} runs each, interleaved (ms)")
print(f"{'variant':<26}{'min':>8}{'median':>9}{'x host':>9}")
for name, values in times.items():
    median = statistics.median(values)
    print(f"{name:<26}{min(values):>8.2f}{median:>9.2f}{median / base:>9.2f}")
