#!/usr/bin/env bash
# Stops what the scripts started (the broker and the demo service).
cd "$(dirname "$0")/.."
for f in .run/claimline.pid .run/tansu.pid; do
  [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; rm -f "$f"
done
exit 0
