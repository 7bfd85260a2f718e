"""Collects criterion's estimates of the decision benchmark into benchmarks/results-decisions.json."""
import json
import pathlib

root = pathlib.Path("target/criterion/decision")
results = []
for engine in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "report"):
    for size in sorted((p for p in engine.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        estimates = json.loads((size / "new" / "estimates.json").read_text())
        results.append({
            "engine": engine.name,
            "organizations": int(size.name),
            "mean_ns": estimates["mean"]["point_estimate"],
            "median_ns": estimates["median"]["point_estimate"],
        })
pathlib.Path("benchmarks/results-decisions.json").write_text(json.dumps(results, indent=2) + "\n")
print(f"{len(results)} results written")
