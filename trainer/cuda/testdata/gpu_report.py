#!/usr/bin/env python3
"""The report of .ci/gpu: results.json and summary.md, rewritten after every
stage and at the end (also from the script's signal trap).

    gpu_report.py WORK OUT

WORK/stages.json is the script's record (meta and stages); WORK/results/
holds what the stages wrote (*.json). Both files are written to OUT under
temporary names and renamed, so a reader (or a kill) never sees half of one.
Standard library only.
"""

import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # a stage may be killed while it writes
        return {"unreadable": "%s: %s" % (os.path.basename(path), e)}


def fmt(x, spec="{:,.0f}", none="n/a"):
    return spec.format(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else none


def pct(x):
    return fmt(100 * x if isinstance(x, (int, float)) else None, "{:.1f}%")


def stage_line(s):
    st = s.get("status", "?")
    reason = s.get("reason", "")
    text = st + (": " + reason if reason and st in ("skipped", "not run") else "")
    note = reason if st not in ("skipped", "not run") else ""
    if st == "running":
        note = "still running at the last report (the script was killed here, or this report is from inside the stage)"
    secs = fmt(s.get("seconds"), "{:.1f}", "")
    lim = fmt(s.get("timeout_s"), "{:.0f}", "")
    return "| %s | %s | %s | %s | %s |" % (s["name"], text, secs, lim, note.replace("|", "\\|").replace("\n", " "))


def summary(meta, stages, res):
    L = []
    dev = meta.get("device") or "no GPU"
    L.append("# .ci/gpu on %s" % dev)
    L.append("")
    L.append("%s; deadline %s s, %s s used%s." % (
        meta.get("started", "?"), meta.get("deadline_s", "?"), fmt(meta.get("elapsed_s"), "{:.0f}", "?"),
        "; dry run (GPUs hidden)" if meta.get("dry_run") else ""))
    if meta.get("final"):
        L.append("Exit status %s%s." % (meta.get("exit"), ", interrupted by " + meta["interrupted"] if meta.get("interrupted") else ""))
    else:
        L.append("Partial: written while the script ran (the last complete stage is final).")
    L.append("")
    L.append("| stage | status | seconds | limit | note |")
    L.append("|---|---|---|---|---|")
    for s in stages:
        L.append(stage_line(s))

    # throughput
    rows = []
    for p in ("base", "large"):
        g = res.get("bench-" + p, {})
        te, ts = res.get("torch-%s-eager" % p, {}), res.get("torch-%s-sdpa" % p, {})
        if not g and not te and not ts:
            continue
        gt = g.get("tokens_per_s")
        best = max([x for x in (te.get("tokens_per_s"), ts.get("tokens_per_s")) if isinstance(x, (int, float))] or [0]) or None
        tcell = lambda t: fmt(t.get("tokens_per_s")) if "tokens_per_s" in t else (t.get("error", "n/a")[:60] if t else "not run")
        rows.append("| %s | %s×%s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s |" % (
            p, g.get("batch", te.get("batch", "?")), g.get("seq", te.get("seq", "?")), g.get("loss_positions", te.get("loss_positions", "?")),
            fmt(gt), fmt(g.get("step_ms"), "{:.1f}"), pct(g.get("mfu_989")), pct(g.get("mfu_loss_989")),
            pct(g.get("mfu_798")), pct(g.get("mfu_loss_798")), tcell(te), tcell(ts),
            fmt(gt / best if gt and best else None, "{:.2f}")))
    if rows:
        L += ["", "## Training throughput, seq 512, bf16 GEMMs (positions/s = B·T per second)", "",
              "| model | batch | loss positions | Go CUDA positions/s | step ms | MFU of 989 TF/s: all / loss positions | of 798 | PyTorch eager | PyTorch SDPA | Go / best PyTorch |",
              "|---|---|---|---|---|---|---|---|---|---|"] + rows
        L += ["", "MFU counts 6N + 12·L·d·T FLOP per position with the head (V·d) at every position (\"all\"), or at the loss positions only, "
              "which is what the model computes (\"loss\")."]
    for p in ("base", "large"):
        g = res.get("bench-" + p, {})
        ops = g.get("ops")
        if not ops:
            continue
        L += ["", "## Where a %s step's time goes (one step with a sync after every op: %s ms, against %s ms unprofiled)" % (
            p, fmt(g.get("profiled_step_ms"), "{:.1f}"), fmt(g.get("step_ms"), "{:.1f}")), "",
            "| op (matmul: rows×in×out) | calls | ms | share |", "|---|---|---|---|"]
        for o in ops[:14]:
            L.append("| %s | %s | %s | %s |" % (o.get("op"), o.get("calls"), fmt(o.get("ms"), "{:.2f}"), pct(o.get("share"))))
    gm = res.get("gemm", {}).get("gemms")
    if gm:
        L += ["", "## cuBLAS at GLM's shapes (bf16 operands, float32 accumulation)", "",
              "| model | product | m×n×k (batch) | TFLOP/s | µs |", "|---|---|---|---|---|"]
        for r in gm:
            L.append("| %s | %s | %s×%s×%s%s | %s | %s |" % (r.get("preset"), r.get("gemm"), r.get("m"), r.get("n"), r.get("k"),
                                                      " (%s)" % r["batch"] if r.get("batch", 1) > 1 else "", fmt(r.get("tflops"), "{:.0f}"), fmt(r.get("us"), "{:.1f}")))
    cp = res.get("copy")
    if cp:
        L += ["", "Copies of 256 MiB: Upload from Go memory %s GB/s, pinned host to device %s GB/s, device to device %s GB/s (read + write)." % (
            fmt(cp.get("upload_gbs"), "{:.1f}"), fmt(cp.get("pinned_to_device_gbs"), "{:.1f}"), fmt(cp.get("device_to_device_gbs"), "{:.0f}"))]

    # correctness
    curves = [(k, v) for k, v in sorted(res.items()) if k.startswith("curve-") and "losses" in v]
    if curves:
        L += ["", "## Training curves (300 steps of small, against the CPU's)", ""]
        for k, v in curves:
            g, c = v["losses"], v["cpu_losses"]
            w = lambda l: sum(l[-50:]) / max(1, len(l[-50:]))
            L.append("- %s: loss %.3f → %.3f (CPU %.3f → %.3f); mean of the last 50 steps %.4f (CPU %.4f)" % (
                v.get("target", k), g[0], g[-1], c[0], c[-1], w(g), w(c)))
    ot = res.get("optests", {}).get("tests")
    if ot:
        bad = {k: v for k, v in ot.items() if v != "pass"}
        L += ["", "## Op tests on the GPU: %d of %d passed in one process" % (sum(v == "pass" for v in ot.values()), len(ot))]
        for k, v in sorted(bad.items()):
            L.append("- %s: %s" % (k, v))
    san = res.get("sanitizer", {})
    if san.get("tools"):
        L += ["", "## compute-sanitizer (%s)" % san.get("version", "")]
        for t in san["tools"]:
            L.append("- %s: %s; %s" % (t.get("tool"), t.get("result"), t.get("summary", "")))

    # the device
    info = None
    for k in ("bench-base", "bench-large"):
        info = info or res.get(k, {}).get("info")
    pf = res.get("preflight", {})
    if not info and pf.get("cycles"):
        info = pf["cycles"][0].get("info")
    if info:
        L += ["", "## Device and libraries", "",
              "- %s, %s, %s SMs, %.0f GiB; driver CUDA %s (%s)" % (info.get("Device"), info.get("Arch"), info.get("SMs"),
                                                                 (info.get("MemoryBytes") or 0) / 2**30, info.get("Driver"), info.get("DriverPath")),
              "- cuBLAS %s (%s; %s)" % (info.get("Cublas"), info.get("CublasPath"), info.get("CublasLtPath")),
              "- NVRTC %s (%s)" % (info.get("NVRTC") or "none", info.get("NVRTCPath") or ""),
              "- kernels %s; parameter layout confirmed by the driver for %s of %s" % (info.get("Kernels"), info.get("ParamsChecked"), info.get("KernelCount"))]
        for n in info.get("Notes") or []:
            L.append("- note: " + n.replace("\n", " / ")[:400])
    if pf.get("cycles"):
        L.append("- preflight: New %s s; GEMM relative errors %s" % (
            " / ".join(fmt(c.get("new_s"), "{:.2f}") for c in pf["cycles"]),
            " / ".join(fmt(c.get("gemm_rel_err"), "{:.2g}") for c in pf["cycles"])))
    L += ["", "Raw logs and every result file: logs.tar.gz; all numbers: results.json."]
    return "\n".join(L) + "\n"


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    work, out = sys.argv[1], sys.argv[2]
    rec = load(os.path.join(work, "stages.json"))
    meta, stages = rec.get("meta", {}), rec.get("stages", [])
    res = {}
    for f in sorted(glob.glob(os.path.join(work, "results", "*.json"))):
        res[os.path.basename(f)[:-5]] = load(f)
    pf = res.get("preflight", {})
    if pf.get("cycles"):
        i = pf["cycles"][0].get("info", {})
        meta["device"] = "%s (%s, driver CUDA %s)" % (i.get("Device"), i.get("Arch"), i.get("Driver"))
    write(os.path.join(out, "results.json"), json.dumps({"meta": meta, "stages": stages, "results": res}, indent=1) + "\n")
    write(os.path.join(out, "summary.md"), summary(meta, stages, res))


if __name__ == "__main__":
    main()
