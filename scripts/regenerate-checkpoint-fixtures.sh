#!/usr/bin/env bash
# Writes the CRIU images of crates/kir/tests/data/checkpoint/ anew with CRIU's own encoder, from
# the JSON in crates/kir/tests/checkpoint.rs. Needs crit (Debian: apt-get install -y criu).
# Run it after changing an image in that test, and commit both the .json and the image files.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v crit >/dev/null || { echo "crit is missing: apt-get install -y criu" >&2; exit 2; }
rm -rf crates/kir/tests/data/checkpoint
KIR_REGENERATE_CHECKPOINT_FIXTURES=1 cargo test -p kir --test checkpoint -- --test-threads=1
ls -l crates/kir/tests/data/checkpoint
