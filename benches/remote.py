"""Timing for benches/remote.sh: a remote cache hit vs curl + tar --zstd -xf + b3sum of the
same blob, a push vs a curl monolithic upload of the same blob, and the lookup of a miss,
against a docker-registry this script starts on loopback."""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

START_DEADLINE = 20.0


def timed(argv, check=True, **kwargs):
    start = time.perf_counter()
    subprocess.run(argv, check=check, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Registry:
    """docker-registry serving ROOT on a free loopback port until stop()."""

    def __init__(self, root):
        os.makedirs(root)
        self.root = root
        self.authority = f"127.0.0.1:{free_port()}"
        config = os.path.join(root, "config.yml")
        with open(config, "w") as out:
            out.write(
                "version: 0.1\nlog:\n  level: error\n"
                f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n"
                f"http:\n  addr: {self.authority}\n  secret: bench\n"
            )
        log = open(os.path.join(root, "registry.log"), "w")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", config],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                urllib.request.urlopen(f"http://{self.authority}/v2/", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    sys.exit(f"docker-registry did not start on {self.authority}")
                time.sleep(0.02)

    def url(self, repo="bench"):
        return f"oci://{self.authority}/{repo}"

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def curl_upload(authority, repository, archive, sha256):
    """POST an upload, then one PUT ?digest= with the whole blob (what a plain client
    does), timed together."""
    start = time.perf_counter()
    started = subprocess.run(
        ["curl", "-sf", "-X", "POST", "-D", "-", "-o", "/dev/null",
         f"http://{authority}/v2/{repository}/blobs/uploads/"],
        check=True, capture_output=True, text=True,
    )
    location = next(line.split(":", 1)[1].strip() for line in started.stdout.splitlines()
                    if line.lower().startswith("location:"))
    if location.startswith("/"):
        location = f"http://{authority}{location}"
    separator = "&" if "?" in location else "?"
    subprocess.run(
        ["curl", "-sf", "-X", "PUT", "-T", archive,
         "-H", "Content-Type: application/octet-stream",
         f"{location}{separator}digest=sha256:{sha256}"],
        check=True, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def report(title, times, goal=None, unit="s"):
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"== {title}")
    for name, values in times.items():
        scale, fmt = (1000, "{:.1f} ms") if unit == "ms" else (1, "{:.3f} s")
        print(f"{name:<10} median {fmt.format(medians[name] * scale)}  "
              f"(min {fmt.format(min(values) * scale)}, max {fmt.format(max(values) * scale)}, "
              f"{len(values)} runs)")
    return medians


def main():
    hermetic, runs, lookups, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    work = tempfile.mkdtemp(prefix="hermetic-remote-bench-", dir="/var/tmp")
    registries = []
    try:
        env = dict(os.environ, HERMETIC_NO_DAEMON="1", HERMETIC_PASSWORD="bench",
                   DOCKER_CONFIG=os.path.join(work, "docker"),
                   XDG_RUNTIME_DIR=os.path.join(work, "runtime"))
        env.pop("REGISTRY_AUTH_FILE", None)
        for name in ("docker", "runtime", "src"):
            os.mkdir(os.path.join(work, name))
        src, state, cache = (os.path.join(work, name) for name in ("src", "state", "cache"))
        subprocess.run([hermetic, "keygen", "--output-key-prefix", os.path.join(work, "ci")],
                       check=True, env=env, capture_output=True)
        key_file, pub_file = os.path.join(work, "ci.key"), os.path.join(work, "ci.pub")
        keys = ["--sign-key", key_file, "--trust-key", pub_file]

        # The entry: the tree benches/cache.sh uses, copied by a single build (symlinks
        # dropped: many host ones are absolute, and such an entry is never cached).
        copies = " ".join(
            f"cp -r {d} out/{i} 2>/dev/null;" for i, d in enumerate(dirs)
        ) + " find out -type l -delete;"
        script = f"mkdir -p out; {copies} true"
        built = subprocess.run(
            [hermetic, "build", "--single", "--json", "--src", src,
             "--artifact", os.path.join(work, "built.tar.zst"),
             "--cache-dir", cache, "--state-dir", state, "--cache-single-run", *keys,
             "--", "sh", "-c", script],
            check=True, capture_output=True, env=env,
        )
        built = json.loads(built.stdout)
        key, sha256 = built["cache"]["key"], built["output"]["digest"]["sha256"]
        assert built["cache"]["stored"], built["cache"]
        archive = os.path.join(cache, "scopes", "local", key, "archive.tar.zst")
        files = len(built["output"]["files"])
        tree_bytes = sum(f["size"] for f in built["output"]["files"])
        print(f"entry: {files} entries, {tree_bytes / 1e6:.0f} MB of files, "
              f"archive {os.path.getsize(archive) / 1e6:.0f} MB")

        def push(registry):
            return [hermetic, "cache", "push", key, "--cache-dir", cache, "--state-dir", state,
                    "--cache-remote", registry.url(), *keys]

        served = Registry(os.path.join(work, "registry-hit"))
        registries.append(served)
        subprocess.run(push(served), check=True, env=env, stdout=subprocess.DEVNULL)
        blob_url = f"http://{served.authority}/v2/bench/local/blobs/sha256:{sha256}"

        # Remote hit: an empty local cache each time.
        times = {"hermetic": [], "baseline": []}
        for run in range(runs):
            for name in times:
                dest = os.path.join(work, f"dest-{name}-{run}")
                artifact = os.path.join(work, f"hit-{name}-{run}.tar.zst")
                hit_cache = os.path.join(work, f"hit-cache-{run}")
                os.sync()
                if name == "hermetic":
                    start = time.perf_counter()
                    hit = subprocess.run(
                        [hermetic, "build", "--single", "--json", "--src", src,
                         "--artifact", artifact, "--extract", dest,
                         "--cache-dir", hit_cache, "--state-dir", state,
                         "--cache-remote", served.url(), "--trust-key", pub_file,
                         "--require-cache", "--", "sh", "-c", script],
                        capture_output=True, env=env,
                    )
                    took = time.perf_counter() - start
                    if hit.returncode != 0:
                        sys.exit(f"the remote hit failed (exit {hit.returncode}):\n"
                                 f"{hit.stderr.decode(errors='replace')}")
                    remote = json.loads(hit.stdout)["cache"].get("remote", {})
                    assert remote.get("status") == "hit", remote
                else:
                    os.mkdir(dest)
                    took = timed(["curl", "-sf", "-o", artifact, blob_url])
                    took += timed(["tar", "--zstd", "-xf", artifact, "-C", dest])
                    took += timed(["b3sum", artifact])
                times[name].append(took)
                shutil.rmtree(dest)
                shutil.rmtree(hit_cache, ignore_errors=True)
                os.remove(artifact)
        medians = report("remote hit: lookup, fetch, verify, restore (hermetic) vs "
                         "curl + tar --zstd -xf + b3sum (baseline)", times)
        print(f"hermetic / baseline: {medians['hermetic'] / medians['baseline']:.2f}x "
              f"(goal <= 1.1x)")

        # Push of a new entry: a fresh registry each time.
        times = {"hermetic": [], "baseline": []}
        for run in range(runs):
            for name in times:
                fresh = Registry(os.path.join(work, f"registry-push-{name}-{run}"))
                os.sync()
                if name == "hermetic":
                    took = timed(push(fresh), env=env)
                else:
                    took = curl_upload(fresh.authority, "bench/local", archive, sha256)
                fresh.stop()
                times[name].append(took)
        # For attribution: the local verification of the same entry (`cache verify`).
        verify = []
        for _ in range(runs):
            os.sync()
            verify.append(timed([hermetic, "cache", "verify", key, "--cache-dir", cache,
                                 "--state-dir", state, "--trust-key", pub_file], env=env))
        medians = report("push of a new entry (hermetic cache push) vs curl monolithic "
                         "upload of the blob (baseline)", times)
        print(f"hermetic / baseline: {medians['hermetic'] / medians['baseline']:.2f}x "
              f"(goal <= 1.2x)")
        print(f"for scale, `hermetic cache verify KEY` of the same entry: median "
              f"{statistics.median(verify):.3f} s")

        # The lookup of a miss.
        missing = "0" * 64
        miss_cache = os.path.join(work, "miss-cache")
        times = {"pull": [], "build+rem": [], "build": [], "curl 404": []}
        for _ in range(lookups):
            times["pull"].append(timed(
                [hermetic, "cache", "pull", missing, "--cache-dir", miss_cache,
                 "--state-dir", state, "--cache-remote", served.url(),
                 "--trust-key", pub_file],
                check=False, env=env, stderr=subprocess.DEVNULL))
            for name, remote in (("build+rem", ["--cache-remote", served.url()]), ("build", [])):
                times[name].append(timed(
                    [hermetic, "build", "--single", "--src", src,
                     "--artifact", os.path.join(work, "miss.tar.zst"),
                     "--cache-dir", miss_cache, "--state-dir", state,
                     "--trust-key", pub_file, *remote, "--require-cache",
                     "--", "sh", "-c", "mkdir -p out; echo miss > out/f"],
                    check=False, env=env, stderr=subprocess.DEVNULL))
            times["curl 404"].append(timed(
                ["curl", "-s", "-o", "/dev/null",
                 f"http://{served.authority}/v2/bench/local/manifests/{missing}"]))
        medians = report("lookup of a miss: `hermetic cache pull` of a missing key (pull), "
                         "a --require-cache build's miss with a remote (build+rem) and "
                         "without (build); curl's 404 for the tag for scale", times, unit="ms")
        print(f"lookup of a miss (cache pull, whole process): {medians['pull'] * 1000:.1f} ms "
              f"(goal <= 20 ms)")
        print(f"what the remote adds to a build's miss: "
              f"{(medians['build+rem'] - medians['build']) * 1000:.1f} ms")
    finally:
        for registry in registries:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
