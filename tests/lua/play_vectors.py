#!/usr/bin/env python3
"""Plays the conformance vectors through the Lua scripts from Python.

This is what a team in another language does: it reads lua/v1/dist/*.lua,
calls them with redis-py (EVALSHA, loading on NOSCRIPT), builds the key names
and arguments from lua/CONTRACT.md, and prints one JSON object per vector with
the results in the conformance runner's field names. The Go test
tests/go/python_test.go compares them with the vectors and with localcache.

usage: play_vectors.py REDIS_URL LUA_DIST_DIR VECTOR_FILE...
"""
import json
import sys

import redis

PREFIX = "py"
MAX_COUNT = 2**53 - 1


def keys(vector_id, strategy, key):
    s = "abs" if strategy == "absolute" else "sup"
    base = "%s%d:v1:%s:{%s}:" % (PREFIX, vector_id, s, key)
    return [base + "buckets", base + "meta"]


ERRORS = {
    "TRYPEMA_ZERO_CAPACITY": "zero_capacity",
    "TRYPEMA_COUNT_EXCEEDS_CAPACITY": "count_exceeds_capacity",
    "TRYPEMA_RATE": "invalid_rate",
    "TRYPEMA_COUNT": "invalid_count",
    "TRYPEMA_ARG": "invalid_arg",
}


def fmt_float(v):
    return repr(float(v))  # shortest text that parses back to the same double


def valid_key(k):
    # The key rule is the caller's to check: scripts never see the user key.
    return 0 < len(k.encode()) <= 255 and ":" not in k


def play_step(scripts, vid, v, s):
    op, strategy, key = s["op"], v["strategy"], s["key"]
    if not valid_key(key):
        return {"error": "invalid_key"}
    k = keys(vid, strategy, key)
    w = v.get("window_ms", 10000)
    b = v.get("bucket_ms", 100)
    hf = v.get("hard_limit_factor", 1.0)
    fc = v.get("factor_cache_ms", 100)
    now = s["at"]
    rate = fmt_float(s.get("rate", 0))
    n = s.get("n", 0)
    try:
        if op == "inc" and strategy == "absolute":
            r = scripts["absolute_inc"](keys=k, args=[w, b, rate, n, now])
            return decision(r[0].decode(), r[0] == b"allowed", r[1], r[2], r[3], r[4], 0.0)
        if op == "inc":
            r = scripts["suppressed_inc"](keys=k, args=[w, b, fmt_float(hf), fc, rate, n, fmt_float(s.get("u", 0)), now])
            return decision(r[0].decode(), r[1] == 1, r[2], r[3], 0, 0, float(r[4]))
        if op == "is_allowed":
            r = scripts["absolute_is_allowed"](keys=k, args=[w, now])
            return decision(r[0].decode(), r[0] == b"allowed", r[1], r[2], r[3], r[4], 0.0)
        if op == "factor":
            r = scripts["suppressed_factor"](keys=k, args=[w, fc, now])
            return {"factor": float(r[0])}
        if op == "get":
            if strategy == "absolute":
                r = scripts["absolute_get"](keys=k, args=[w, now])
            else:
                r = scripts["suppressed_get"](keys=k, args=[w, fc, now])
            return {"exists": r[0] == 1, "total": r[1], "declined": r[2], "limit": r[3], "hard": r[4],
                    "rate": float(r[5]), "factor": float(r[6])}
        if op == "set_rate_limit":
            r = scripts["set_rate_limit"](keys=k, args=[w, fmt_float(hf if strategy == "suppressed" else 1), rate, now])
            return {"existed": r[0] == 1, "previous_rate": float(r[1])}
        if op == "set_if":
            r = scripts["set_if"](keys=k, args=[w, fmt_float(hf if strategy == "suppressed" else 1), rate,
                                                s.get("cmp", ""), n, s.get("mode", ""), now])
            return {"matched": r[0] == 1, "previous": r[1], "current": r[2]}
        if op == "delete":
            usage = "total" if strategy == "absolute" else "accepted"
            r = scripts["delete"](keys=k, args=[w, usage, now])
            return {"existed": r[0] == 1, "usage": r[1]}
    except redis.ResponseError as e:
        code = str(e).split(" ", 1)[0]
        return {"error": ERRORS.get(code, "unexpected: " + str(e))}
    raise ValueError("unknown op " + op)


def decision(outcome, admitted, limit, remaining, retry, raw, factor):
    return {"outcome": outcome, "admitted": admitted, "limit": limit, "remaining": remaining,
            "retry_after_ms": retry, "remaining_after_waiting": raw, "factor": factor}


def main():
    url, dist, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    r = redis.Redis.from_url(url)
    names = ["absolute_inc", "absolute_is_allowed", "absolute_get", "suppressed_inc", "suppressed_factor",
             "suppressed_get", "set_rate_limit", "set_if", "delete"]
    scripts = {}
    for name in names:
        with open("%s/%s.lua" % (dist, name), encoding="utf-8") as f:
            scripts[name] = r.register_script(f.read())  # EVALSHA, SCRIPT LOAD on NOSCRIPT
    vid = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            vectors = json.load(f)
        for v in vectors:
            vid += 1
            results = [play_step(scripts, vid, v, s) for s in v["steps"]]
            print(json.dumps({"file": path.rsplit("/", 1)[-1], "name": v["name"], "results": results}))


if __name__ == "__main__":
    main()
