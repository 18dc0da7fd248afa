#!/usr/bin/env python3
"""Reference runner for glmkit's SentencePiece tests (sentencepiece_test.go).

Runs SentencePiece's own Python binding (Debian python3-sentencepiece 0.1.97,
the C++ library) over documents, so that the Go tests can compare ids.

    spm_ref.py version
        prints sentencepiece.__version__
    spm_ref.py encode JOB.json
        JOB: {"docs": "docs.json", "jobs": [{"model": "x.model", "out": "ids.bin"}, ...]}
        docs.json is a JSON array of strings. For each job, writes every
        document's EncodeAsIds as uint32 count + uint32 ids, little endian.
    spm_ref.py bench JOB.json
        JOB: {"docs": "docs.json", "model": "x.model", "seconds": 2}
        encodes the documents over and over for about that long (two passes
        at least), timing only the EncodeAsIds calls, and prints
        {"tokens": N, "seconds": S, "passes": P, "best": fastest pass in seconds}.
"""
import json
import struct
import sys
import time

import sentencepiece as spm


def load(path):
    sp = spm.SentencePieceProcessor()
    if not sp.Load(path):
        raise SystemExit("cannot load " + path)
    return sp


def main():
    cmd = sys.argv[1]
    if cmd == "version":
        print(spm.__version__)
        return
    with open(sys.argv[2], encoding="utf-8") as f:
        job = json.load(f)
    if cmd == "decode":
        for j in job["jobs"]:
            sp = load(j["model"])
            with open(j["ids"], encoding="utf-8") as f:
                ids = json.load(f)
            with open(j["out"], "w", encoding="utf-8") as out:
                json.dump([sp.DecodeIds(x) for x in ids], out)
        return
    with open(job["docs"], encoding="utf-8") as f:
        docs = json.load(f)
    if cmd == "encode":
        for j in job["jobs"]:
            sp = load(j["model"])
            with open(j["out"], "wb") as out:
                for d in docs:
                    ids = sp.EncodeAsIds(d)
                    out.write(struct.pack("<I%dI" % len(ids), len(ids), *ids))
        return
    if cmd == "bench":
        sp = load(job["model"])
        enc = sp.EncodeAsIds
        for d in docs[:64]:  # warm up
            enc(d)
        tokens, spent, passes, best = 0, 0.0, 0, float("inf")
        while spent < job["seconds"] or passes < 2:
            pass_time = 0.0
            for d in docs:
                t0 = time.perf_counter()
                n = len(enc(d))
                pass_time += time.perf_counter() - t0
                tokens += n
            spent += pass_time
            best = min(best, pass_time)
            passes += 1
        print(json.dumps({"tokens": tokens, "seconds": spent, "passes": passes, "best": best}))
        return
    raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
