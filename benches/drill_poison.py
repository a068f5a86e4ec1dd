"""Timing for benches/drill-poison.sh: each attack of `hermetic drill poison` on an entry
made from a large tree, against one verified restore of an entry of the same size."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from cache import build_entry, timed  # benches/cache.py: the same entry, timed the same way


def main():
    hermetic, runs, dirs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    work = tempfile.mkdtemp(prefix="hermetic-drill-bench-", dir="/var/tmp")
    try:
        # The deployment's entry: the same tree as the drill's payload (symlinks dropped).
        cache, state, _, key, _ = build_entry(hermetic, work, dirs)

        restores = []
        for run in range(runs):
            dest = os.path.join(work, f"dest-{run}")
            os.sync()
            restores.append(timed([hermetic, "cache", "restore", "--cache-dir", cache,
                                   "--state-dir", state, key, "--dest", dest]))
            shutil.rmtree(dest)
        restore = statistics.median(restores)
        print(f"baseline: verified restore (hermetic cache restore) median {restore:.3f} s "
              f"({runs} runs)")

        scores = os.path.join(work, "poison.json")
        payload = [arg for d in dirs for arg in ("--payload", d)]
        # The drill keeps its result in a daemon's history: a daemon of the bench's own,
        # stopped afterwards.
        config = os.path.join(work, "config.toml")
        with open(config, "w") as out:
            out.write(f'version = 1\nsocket = "{work}/run/hermeticd.sock"\n'
                      f'state_dir = "{work}/daemon-state"\n')
        daemon_env = dict(os.environ, HERMETIC_CONFIG=config)
        daemon_env.pop("HERMETIC_NO_DAEMON", None)
        start = time.perf_counter()
        drill = subprocess.run(
            [hermetic, "drill", "poison", "--cache-dir", cache, "--state-dir", state,
             "--scratch-dir", work, "--json", scores, *payload],
            capture_output=True, env=daemon_env,
        )
        total = time.perf_counter() - start
        subprocess.run([hermetic, "daemon", "stop"], env=daemon_env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if drill.returncode != 0:
            sys.stdout.write(drill.stdout.decode())
            sys.stderr.write(drill.stderr.decode()[-4000:])
            raise SystemExit(f"drill poison exited {drill.returncode}")
        attacks = json.load(open(scores))["attacks"]
        print(f"{'attack':<45} {'ms':>8} {'x restore':>10}")
        for attack in sorted(attacks, key=lambda a: -a["duration_ms"]):
            seconds = attack["duration_ms"] / 1000
            print(f"{attack['name']:<45} {attack['duration_ms']:>8} {seconds / restore:>9.2f}x")
        per_attack = [a["duration_ms"] / 1000 for a in attacks]
        print(f"{len(attacks)} attacks: median {statistics.median(per_attack):.3f} s, "
              f"max {max(per_attack):.3f} s, sum {sum(per_attack):.1f} s; "
              f"drill total {total:.1f} s (with the store copy and two dual builds)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
