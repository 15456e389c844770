"""Reads `measure` JSON lines on stdin; prints the fastest run as a Markdown table row."""
import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip()]
r = min(rows, key=lambda row: row["seconds"])
print("| {:.2f} GB | {} | {} | {:.2f} | {:.0f} | {:.0f} | {:.0f} | {:.0f} |".format(
    r["bytes"] / 1e9, r["mode"], r["threads"], r["seconds"], r["mb_per_s"],
    r["events_per_s"], r["records_per_s"], r["peak_rss_mb"]))
