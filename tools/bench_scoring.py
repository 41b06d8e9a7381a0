"""Benchmark of the compiled scorer against pure-Python scoring pipelines, measured in the same run.

Writes N random D-dim embeddings (Kaldi ark/scp) and trial lists of the requested sizes (Kaldi form, grouped by
enrollment like the VoxCeleb lists) under --workdir, then times, from files on disk to score file + EER + minDCF
at p_target 0.01 and 0.05:
  (a) ours: wespeaker_avkd.scoring (C++ parse, cosine, score-file writer, metrics), in a subprocess that also
      reports its peak RSS (resource.getrusage ru_maxrss);
  (b) the best vectorised pure-Python pipeline: chunked bytes parsing + dict lookups, one numpy normalisation,
      chunked gather + einsum, Python score-file writer, sklearn roc_curve + closed-form crossing, numpy minDCF;
  (c) WeSpeaker's per-trial loop (split, dict lookup, sklearn cosine_similarity per pair, formatted write) on a
      sample of --loop_sample trials, extrapolated linearly, plus its embedding load.
Both writers use the same atomic write (fsync + rename).

  python tools/bench_scoring.py --sizes 1000000 10000000          # the README figures
  python tools/bench_scoring.py --sizes 20000 --num_emb 2000       # a quick smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

P_TARGETS = (0.01, 0.05)


def make_keys(n: int) -> list[str]:
    """VoxCeleb-like utterance ids: idSSSSS/video/NNNNN, 50 utterances per speaker."""
    return [f"id{10000 + i // 50:05d}/vid{(i // 10) % 5:07d}/{i % 50 + 1:05d}" for i in range(n)]


def write_embeddings(workdir: str, num: int, dim: int, seed: int) -> str:
    """Random float32 embeddings as xvector.ark/scp (kaldiio); returns the scp path (reused when present)."""
    import kaldiio

    scp = os.path.join(workdir, f"xvector_{num}x{dim}.scp")
    if os.path.exists(scp):
        return scp
    rng = np.random.default_rng(seed)
    keys = make_keys(num)
    ark = scp[:-4] + ".ark"
    with kaldiio.WriteHelper(f"ark,scp:{ark}.tmp,{scp}.tmp") as w:
        for start in range(0, num, 10000):
            block = rng.standard_normal((min(10000, num - start), dim)).astype(np.float32) + 0.3
            for i, vec in enumerate(block):
                w[keys[start + i]] = vec
    os.replace(ark + ".tmp", ark)
    with open(scp + ".tmp") as f, open(scp, "w") as g:  # the scp names the temporary ark: point it at the final one
        g.write(f.read().replace(ark + ".tmp", ark))
    os.unlink(scp + ".tmp")
    return scp


def write_trials(workdir: str, num_emb: int, size: int, seed: int) -> str:
    """A Kaldi-form trial list `enroll test target|nontarget` of `size` trials, grouped by enrollment."""
    path = os.path.join(workdir, f"trials_{size}_{num_emb}.txt")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed + size)
    keys = np.array(make_keys(num_emb))
    label = np.array(["nontarget", "target"])
    with open(path + ".tmp", "w") as f:
        step = 1_000_000
        for start in range(0, size, step):
            m = min(step, size - start)
            enroll = np.sort(rng.integers(0, num_emb, m))
            test = rng.integers(0, num_emb, m)
            lab = (rng.random(m) < 0.1).astype(int)
            f.write("\n".join(f"{a} {b} {c}" for a, b, c in zip(keys[enroll], keys[test], label[lab])))
            f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else platform.processor()), for the report header."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (less sensitive than wall time to a busy machine)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ours(emb_path: str, trials: str, out: str) -> dict:
    """(a): the library path, timed from files to score file + metrics."""
    from wespeaker_avkd.scoring import compute_metrics, load_embeddings, score_trials, write_score_file

    c0, t0 = cpu_seconds(), time.perf_counter()
    keys, emb = load_embeddings(emb_path)
    t1 = time.perf_counter()
    ts = score_trials(trials, keys, emb)
    t2 = time.perf_counter()
    write_score_file(out, ts)
    t3 = time.perf_counter()
    del emb  # the table is not needed for the metrics
    m = compute_metrics(ts.scores, ts.labels, P_TARGETS)
    t4 = time.perf_counter()
    return {"total": t4 - t0, "cpu": cpu_seconds() - c0, "load": t1 - t0, "parse+score": t2 - t1,
            "write": t3 - t2, "metrics": t4 - t3,
            "eer": m.eer, "min_dcf": list(m.min_dcf.values()), "trials": len(ts), "peak_rss_mb": peak_rss_mb()}


def python_metrics(scores: np.ndarray, labels: np.ndarray) -> tuple[float, list[float]]:
    """EER (sklearn roc_curve + closed-form crossing) and minDCF (numpy, compute_min_dcf.py definition)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    d = fnr - fpr  # falls from +1 to -1 along roc_curve's decreasing thresholds
    j = int(np.argmax(d <= 0))
    i = max(j - 1, 0)
    t = 0.0 if d[j] == d[i] else d[i] / (d[i] - d[j])
    eer = fnr[i] + t * (fnr[j] - fnr[i])
    order = np.argsort(scores, kind="stable")
    lab = labels[order].astype(np.int64)
    nt = lab.sum()
    nn = len(lab) - nt
    fnrs = np.cumsum(lab) / nt
    fprs = 1.0 - np.cumsum(1 - lab) / nn
    dcfs = [float((fnrs * p + fprs * (1 - p)).min() / min(p, 1 - p)) for p in P_TARGETS]
    return float(eer), dcfs


def run_python(emb_path: str, trials: str, out: str) -> dict:
    """(b): the best vectorised pure-Python pipeline we could write."""
    import kaldiio

    from wespeaker_avkd.utils.fileio import atomic_write

    c0, t0 = cpu_seconds(), time.perf_counter()
    keys, vecs = zip(*kaldiio.load_scp_sequential(emb_path))
    emb = np.stack(vecs).astype(np.float32)
    del vecs
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)  # normalise each row once
    index = {k.encode(): i for i, k in enumerate(keys)}
    t1 = time.perf_counter()
    enroll, test, labels = [], [], []
    with open(trials, "rb") as f:
        while True:
            lines = f.readlines(1 << 26)
            if not lines:
                break
            tok = b" ".join(lines).split()
            enroll.append(np.fromiter(map(index.__getitem__, tok[0::3]), np.int64, len(lines)))
            test.append(np.fromiter(map(index.__getitem__, tok[1::3]), np.int64, len(lines)))
            labels.append(np.array(tok[2::3]) == b"target")
    enroll, test, labels = np.concatenate(enroll), np.concatenate(test), np.concatenate(labels).astype(np.int8)
    t2 = time.perf_counter()
    scores = np.empty(len(enroll), np.float32)
    step = 1 << 16
    for s in range(0, len(enroll), step):
        scores[s:s + step] = np.einsum("ij,ij->i", emb[enroll[s:s + step]], emb[test[s:s + step]])
    t3 = time.perf_counter()
    keys = np.array(keys)
    names = np.array(["nontarget", "target"])
    with atomic_write(out) as f:
        for s in range(0, len(enroll), step):
            sl = slice(s, s + step)
            f.write("".join(f"{a} {b} {c:.7g} {d}\n" for a, b, c, d in
                            zip(keys[enroll[sl]].tolist(), keys[test[sl]].tolist(), scores[sl].tolist(),
                                names[labels[sl]].tolist())))
    t4 = time.perf_counter()
    del emb
    eer, dcfs = python_metrics(scores, labels)
    t5 = time.perf_counter()
    return {"total": t5 - t0, "cpu": cpu_seconds() - c0, "load": t1 - t0, "parse": t2 - t1, "score": t3 - t2,
            "write": t4 - t3,
            "metrics": t5 - t4, "eer": eer, "min_dcf": dcfs, "trials": len(scores), "peak_rss_mb": peak_rss_mb()}


def run_loop(emb_path: str, trials: str, out: str, sample: int, size: int) -> dict:
    """(c): WeSpeaker score.py's per-trial loop on the first `sample` trials, extrapolated to `size`."""
    import kaldiio
    from sklearn.metrics.pairwise import cosine_similarity

    from wespeaker_avkd.utils.fileio import atomic_write

    t0 = time.perf_counter()
    emb_dict = {k: v for k, v in kaldiio.load_scp_sequential(emb_path)}
    t1 = time.perf_counter()
    with open(trials) as f:
        lines = [next(f) for _ in range(sample)]
    t2 = time.perf_counter()
    scores, labels = [], []
    with atomic_write(out) as w:
        for line in lines:
            segs = line.strip().split()
            e1, e2 = emb_dict[segs[0]], emb_dict[segs[1]]
            s = cosine_similarity(e1.reshape(1, -1), e2.reshape(1, -1))[0][0]
            w.write(f"{segs[0]} {segs[1]} {s:.5f} {segs[2]}\n")
            scores.append(s)
            labels.append(segs[2] == "target")
    python_metrics(np.array(scores, np.float32), np.array(labels, np.int8))
    t3 = time.perf_counter()
    per_trial = (t3 - t2) / sample
    return {"total": (t1 - t0) + per_trial * size, "load": t1 - t0, "per_trial_us": 1e6 * per_trial,
            "sample": sample, "extrapolated_to": size}


def in_subprocess(mode: str, emb_path: str, trials: str, out: str, extra: list[str]) -> dict:
    """Run one pipeline in a fresh interpreter (clean peak-memory figure); returns its JSON report."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_mode", mode, "--_emb", emb_path, "--_trials", trials,
           "--_out", out] + extra
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    """Prepare data, run (a), (b), (c) per size, print timings, ratios and memory."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default=None, help="where data and score files go (default: a temporary dir)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="trial-list sizes")
    p.add_argument("--num_emb", type=int, default=150_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--loop_sample", type=int, default=20_000, help="trials timed for (c)")
    p.add_argument("--skip_python", action="store_true", help="skip (b)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--_mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_emb", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_trials", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_size", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._mode:
        if args._mode == "ours":
            r = run_ours(args._emb, args._trials, args._out)
        elif args._mode == "python":
            r = run_python(args._emb, args._trials, args._out)
        else:
            r = run_loop(args._emb, args._trials, args._out, args.loop_sample, args._size)
        print(json.dumps(r))
        return

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_scoring_")
        args.workdir = tmp.name
    os.makedirs(args.workdir, exist_ok=True)
    print(f"# bench_scoring: {args.num_emb} x {args.dim} float32 embeddings, sizes {args.sizes}, "
          f"{os.cpu_count()} CPUs ({cpu_model()}), load average {os.getloadavg()[0]:.1f}, workdir {args.workdir}")
    t = time.perf_counter()
    emb_path = write_embeddings(args.workdir, args.num_emb, args.dim, args.seed)
    print(f"# data: embeddings ready in {time.perf_counter() - t:.1f} s", flush=True)
    for size in args.sizes:
        t = time.perf_counter()
        trials = write_trials(args.workdir, args.num_emb, size, args.seed)
        print(f"# data: {size} trials ready in {time.perf_counter() - t:.1f} s "
              f"({os.path.getsize(trials) / 2**20:.0f} MiB)", flush=True)
        out = os.path.join(args.workdir, f"out_{size}")
        a = in_subprocess("ours", emb_path, trials, out + ".a.score", [])
        print(f"(a) ours        {size:>9} trials  {a['total']:7.2f} s  {size / a['total']:12,.0f} trials/s  "
              f"cpu {a['cpu']:6.2f} s  [load {a['load']:.2f}, parse+score {a['parse+score']:.2f}, "
              f"write {a['write']:.2f}, "
              f"metrics {a['metrics']:.2f}]", flush=True)
        if not args.skip_python:
            b = in_subprocess("python", emb_path, trials, out + ".b.score", [])
            print(f"(b) numpy       {size:>9} trials  {b['total']:7.2f} s  {size / b['total']:12,.0f} trials/s  "
                  f"cpu {b['cpu']:6.2f} s  [load {b['load']:.2f}, parse {b['parse']:.2f}, score {b['score']:.2f}, "
                  f"write {b['write']:.2f}, "
                  f"metrics {b['metrics']:.2f}]", flush=True)
            agree = abs(a["eer"] - b["eer"]) < 1e-4 and np.allclose(a["min_dcf"], b["min_dcf"], atol=1e-4)
            print(f"    EER (a) {100 * a['eer']:.4f}%  (b) {100 * b['eer']:.4f}%  "
                  f"minDCF (a) {a['min_dcf']} (b) {b['min_dcf']}  agree: {agree}")
        c = in_subprocess("loop", emb_path, trials, out + ".c.score", ["--_size", str(size),
                                                                       "--loop_sample", str(args.loop_sample)])
        print(f"(c) loop        {size:>9} trials  {c['total']:7.2f} s  {size / c['total']:12,.0f} trials/s   "
              f"[load {c['load']:.2f} + {c['per_trial_us']:.1f} us/trial x {size}, timed on {c['sample']}]")
        if not args.skip_python:
            print(f"    speed-up a/b: {b['total'] / a['total']:.1f}x wall, {b['cpu'] / a['cpu']:.1f}x cpu time")
        print(f"    speed-up a/c: {c['total'] / a['total']:.1f}x")
        ref = (args.num_emb * args.dim * 4 + size * 5) / 2**20
        print(f"    peak RSS (a): {a['peak_rss_mb']:.0f} MiB = {a['peak_rss_mb'] / ref:.2f} x (embedding table + "
              f"float32 scores + int8 labels = {ref:.0f} MiB)" +
              (f"; (b): {b['peak_rss_mb']:.0f} MiB" if not args.skip_python else ""), flush=True)
        for suffix in (".a.score", ".b.score", ".c.score"):
            if os.path.exists(out + suffix):
                os.unlink(out + suffix)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
