"""Timeline of one `imgraph build --json` run, for benches/makespan.sh.

Reads the build's newline-delimited JSON events on stdin and timestamps each as it arrives, then prints, per
layer (name prefix before the first `-`), when its builds ran, how long each image took inside the DAG, and how
long each image waited after its last parent finished (the scheduler's delay).

Usage: imgraph build DIR --json ... | python3 benches/timeline.py GRAPH_TEXT
where GRAPH_TEXT is the output of `imgraph graph DIR --format text` (`name:tag <- parent, parent`).
"""

import json
import sys
import time


def main() -> int:
    t0 = time.monotonic()
    start, end, state = {}, {}, {}
    for line in sys.stdin:
        now = time.monotonic() - t0
        event = json.loads(line)
        if event["event"] == "started" and event["step"] == "build":
            start[event["name"]] = now
        elif event["event"] == "finished":
            end[event["name"]] = now
            state[event["name"]] = event["state"]
    parents = {}
    with open(sys.argv[1], encoding="utf-8") as graph:
        for line in graph:
            name, _, rest = line.partition(" <- ")
            parents[name.split(":")[0]] = [p.strip() for p in rest.split("(")[0].split(",") if p.strip()]
    if not start or set(start) != set(end):
        print("timeline: incomplete build events", file=sys.stderr)
        return 1
    durations = [end[n] - start[n] for n in start]
    gaps = [start[n] - max(end[p] for p in parents[n]) for n in start if parents.get(n)]
    print(f"instrumented DAG build: last image finished at {max(end.values()):.2f} s; "
          f"states: {', '.join(sorted(set(state.values())))}")
    for layer in sorted({n.split("-")[0] for n in start}):
        names = [n for n in start if n.split("-")[0] == layer]
        print(f"  layer {layer}: builds {min(start[n] for n in names):6.2f} -> {max(end[n] for n in names):6.2f} s, "
              f"each {min(end[n] - start[n] for n in names):.2f}-{max(end[n] - start[n] for n in names):.2f} s")
    print(f"  per image (build + verify) inside the DAG: mean {sum(durations) / len(durations):.2f} s, "
          f"max {max(durations):.2f} s")
    if gaps:
        print(f"  from the last parent's end to the child's start: mean {sum(gaps) / len(gaps) * 1000:.0f} ms, "
              f"max {max(gaps) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
