#!/usr/bin/env bash
# Robustness check of `generate` (no model needed): a loopback fake server fails about 30% of
# calls in mixed ways (500, 429, a hang past the request deadline, a malformed body, invalid
# JSON), generate is killed with SIGKILL three times mid-run, then resumed until done.
# Prints the lines after each kill, the exit codes of the resumes, and the final check:
# samples == planned, unique ids, no torn line.
# Usage: bench/fault_resume.sh [SCRATCH_DIR]   (run from the repository root)
# The server's tries (slow clients under ulimit -n 256, trace memory): bench/serve_abuse.py.
set -u
PY="${PYTHON:-$PWD/.venv/bin/python}"
dir="${1:-$(mktemp -d)}"; mkdir -p "$dir"; cd "$dir"; rm -rf out
export HF_HUB_OFFLINE=1
port=18911
"$PY" -m matrix_align.testing.fake_openai_server --port $port --model fake --base-latency 0.02 \
  --per-token 0 --fail-500 0.07 --fail-429 0.07 --fail-timeout 0.04 --fail-malformed-body 0.06 \
  --fail-invalid-json 0.06 --hang 3 --seed 7 > server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 2
gen() {  # exec: in the background, $! is then the generate process itself
  exec "$PY" -m matrix_align generate --source advbench:matrix:50 --backend openai \
    --base-url "http://127.0.0.1:$port/v1" --model fake --output out --roles 2 --steps 2 \
    --concurrency 16 --request-timeout 2 --no-export -q
}
for k in 1 2 3; do
  gen > "gen-kill$k.log" 2>&1 & pid=$!
  sleep $((4 + k * 3)); kill -9 $pid; wait $pid 2>/dev/null
  echo "after kill $k: $(cat out/samples.jsonl 2>/dev/null | wc -l) sample lines"
done
for k in 1 2 3; do
  (gen) > "gen-resume$k.log" 2>&1; rc=$?
  echo "resume $k: exit $rc (0 all done, 3 some failed: resume again)"
  [ $rc = 0 ] && break
done
"$PY" - <<'PY'
import json
ids, torn = [], 0
for line in open("out/samples.jsonl", encoding="utf-8"):
    try:
        ids.append(json.loads(line)["id"])
    except (ValueError, KeyError):
        torn += 1
planned = json.load(open("out/summary.json"))["counts"]["planned"]
print(f"planned {planned}, samples {len(ids)}, unique {len(set(ids))}, torn lines {torn}")
raise SystemExit(0 if len(ids) == len(set(ids)) == planned and not torn else 1)
PY
