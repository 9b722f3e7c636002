"""The closing table of ``benchmarks/run_parts.py``: one line per measured part, mode and member.

:func:`table` reads the JSON that run_parts.py writes (``run_parts.json``), so the table of a GPU
machine's results can be printed again anywhere:

    python benchmarks/parts_report.py OUT/run_parts.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _member_cells(row: dict) -> str:
    if "error" in row:
        return "error: " + row["error"][:70]
    if "state_write_s" in row:
        return f"state {_fmt(row['state_write_s'])} s ({_fmt(row.get('state_mib'))} MiB), " \
               f"model {_fmt(row.get('model_write_s'))} s"
    if "preset_workers" in row:
        a, b = row["preset_workers"], row["core_share_workers"]
        return f"{_fmt(a['images_per_s'])} img/s ({a['num_workers']} workers), " \
               f"{_fmt(b['images_per_s'])} ({b['num_workers']})"
    return f"{_fmt(row.get('images_per_s'))} img/s, peak {_fmt(row.get('peak_gib'))} GiB"


def table(data: dict) -> str:
    """The measured parts and projections of ``data`` as aligned text lines."""
    lines = [f"device: {data.get('device')}  dry run: {data.get('dry_run')}", f"{'part':<34} {'mode':<15} result"]
    for mode in ("solo", "pair", "pair_mps"):
        for part, rows in (data.get(f"seg_{mode}") or {}).items():
            members = [r for r in rows if "summed_images_per_s" not in r]
            summed = next((r["summed_images_per_s"] for r in rows if "summed_images_per_s" in r), None)
            cells = " | ".join(_member_cells(r) for r in members)
            lines.append(f"{'deeplab ' + part:<34} {mode:<15} {cells}" + (f"  (sum {_fmt(summed)})" if summed and
                                                                             len(members) > 1 else ""))
    for key, p in (data.get("projection_voc_106_dmt") or {}).items():
        if isinstance(p, dict) and "whole_run_min" in p:
            m = max(p["per_member_min"], key=lambda r: r["total_min"])  # the slower member sets the time
            lines.append(f"{'voc-106-dmt projection':<34} {key.split()[0]:<15} whole run {p['whole_run_min']} min "
                         f"(step only {p['step_only_min']} min; slower member: train {m['train_min']}, loader wait "
                         f"{m['loader_wait_min']}, label {m['label_min']}, eval {m['eval_min']}, checkpoints "
                         f"{m['checkpoint_min']}; missing: {', '.join(p['missing']) or 'none'})")
    for key, entry in (data.get("dino_pairs") or {}).items():
        cells = " | ".join(f"{r.get('model', '?')}: " + _member_cells(r) for r in entry.get("members", []))
        proj = entry.get("projection_voc92")
        lines.append(f"{'dino pair ' + key:<34} {'pair':<15} {cells}" +
                     (f"; VOC-92 run {proj['whole_run_min']} min" if proj else ""))
    for model, rows in (data.get("compile") or {}).items():
        for r in rows:
            mode = r.get("part", "?").rsplit("/", 1)[-1]
            lines.append(f"{'compile ' + model:<34} {mode:<15} {_member_cells(r)}"
                         + (f", warm-up {_fmt(r.get('warmup_s'))} s" if "warmup_s" in r else ""))
    for key, err in (data.get("errors") or {}).items():
        lines.append(f"{'error ' + key:<34} {'':<15} {err[:120]}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
