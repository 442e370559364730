#!/usr/bin/env python3
"""Writes a synthetic docker-pkg image tree of N images for benchmarks.

Usage: gen-tree.py N DIR [--seed S]

Shaped like production-images: images nested two levels deep, each with a changelog of 20 entries (only the
top one matters), a control file, and a template using image_tag/apt_install/uid. About a third of the images
are roots (FROM a base image); the others are built FROM one earlier image and declare 0-2 more control
dependencies on earlier images, so the graph is a DAG with long chains and wide fan-out.
"""
import argparse
import os
import random

ENTRY = """{name} ({version}) wikimedia; urgency=medium

  * Weekly rebuild.

 -- Image build Bot <root@wikimedia.org>  Sun, 16 Aug 2026 06:00:05 +0000

"""

ROOT_TEMPLATE = """FROM {{{{ "bookworm" | image_tag }}}}

RUN {{{{ "curl ca-certificates {name}-tools" | apt_install }}}}
USER {{{{ "nobody" | uid }}}}
"""

CHILD_TEMPLATE = """FROM {{{{ "{parent}" | image_tag }}}}

{{% set packages|replace('\\n', ' ') -%}}
lib{name}
{name}-data
{{%- endset %}}
RUN {{{{ packages | apt_install }}}}
USER {{{{ "www-data" | uid }}}}
"""

CONFIG = """registry = "docker-registry.example.org"
base_images = ["docker-registry.example.org/bookworm:latest"]
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("dir")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    with open(os.path.join(args.dir, "images.toml"), "w") as f:
        f.write(CONFIG)
    names = []
    for i in range(args.count):
        name = f"img{i:05d}"
        directory = os.path.join(args.dir, f"group{i % 50:02d}", name)
        os.makedirs(directory, exist_ok=True)
        if names and rng.random() > 0.33:
            parent = rng.choice(names[-200:])
            extra = rng.sample(names, min(len(names), rng.randint(0, 2)))
            deps = sorted({parent, *extra})
            template = CHILD_TEMPLATE.format(name=name, parent=parent)
        else:
            deps = []
            template = ROOT_TEMPLATE.format(name=name)
        with open(os.path.join(directory, "Dockerfile.template"), "w") as f:
            f.write(template)
        with open(os.path.join(directory, "changelog"), "w") as f:
            for n in range(20, 0, -1):
                f.write(ENTRY.format(name=name, version=f"1.{n}.0-1-20260816"))
        with open(os.path.join(directory, "control"), "w") as f:
            f.write(f"Package: {name}\n")
            if deps:
                f.write(f"Depends: {', '.join(deps)}\n")
        names.append(name)


if __name__ == "__main__":
    main()
