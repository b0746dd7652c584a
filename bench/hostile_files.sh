#!/usr/bin/env bash
# The file and input tries of issue 25's second reliability round (no model needed: the
# scripted backend, and a loopback fake server for the URL secrets), so the next round can
# rerun them. Each try prints PASS or FAIL and why; the script exits 1 if any failed.
#   - N1: a run folder's samples.jsonl, errors.jsonl, results.jsonl or .lock is a symbolic
#     link to a file outside it (generate, evaluate, a replay): refused, the target unchanged;
#   - N2: a generate, and a second import, started while an import runs into the same folder;
#   - N3: secrets in --base-url query values and its fragment, grepped in every file written;
#   - N7, N15: --config and --set nested 100,000 deep, a 5,000-digit integer, a FIFO,
#     /dev/zero;
#   - N12: sweep --grid values equal but spelled differently; N19: no empty --output left
#     by a refused evaluate or sweep; N20: export --private without --push-to-hub.
# Usage: bench/hostile_files.sh [SCRATCH_DIR]   (run from the repository root)
set -u
PY="${PYTHON:-$PWD/.venv/bin/python}"
root=$PWD
dir="${1:-$(mktemp -d)}"; mkdir -p "$dir"; cd "$dir"
export HF_HUB_OFFLINE=1
failed=0
ma() { timeout 120 "$PY" -m matrix_align "$@"; }
check() {  # check NAME CONDITION-EXIT-CODE DETAIL
  if [ "$2" = 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; failed=1; fi
}
no_traceback() { ! grep -q Traceback "$1"; }
GEN=(generate -b scripted -s advbench:3 --roles 1 --steps 1 --hub never -q --no-export)
EVAL=(evaluate -b scripted -S matrix -B advbench --limit 2 --metrics refusal --roles 1
      --steps 1 --hub never -q)

# N1: links in a run folder.
rm -rf n1 && mkdir n1
ma "${GEN[@]}" -o n1/gen > /dev/null 2>&1
ma "${EVAL[@]}" -o n1/eval > /dev/null 2>&1
cp n1/eval/results.jsonl n1/results.copy
for target in gen/samples.jsonl gen/errors.jsonl gen/.lock eval/results.jsonl eval/.lock; do
  printf 'one\ntwo\nlast line without newline' > n1/victim.txt
  rm -f "n1/$target" && ln -s "$PWD/n1/victim.txt" "n1/$target"
  case $target in
    gen/*) ma "${GEN[@]}" -o n1/gen > n1/out.log 2>&1; rc=$? ;;
    *) ma "${EVAL[@]}" -o n1/eval > n1/out.log 2>&1; rc=$? ;;
  esac
  [ "$(cat n1/victim.txt)" = "$(printf 'one\ntwo\nlast line without newline')" ] \
    && [ $rc = 2 ] && no_traceback n1/out.log
  check "N1 link at $target" $? "rc $rc, victim: $(wc -c < n1/victim.txt) bytes"
  rm -f "n1/$target"
done
ln -s "$PWD/n1/elsewhere.lock" n1/gen/.lock
ma "${GEN[@]}" -o n1/gen > n1/out.log 2>&1
[ ! -e n1/elsewhere.lock ]; check "N1 a .lock link creates no file" $? "it was created"
rm -f n1/gen/.lock
# A replay reads the answers through the link, then must not append to (or truncate) it.
{ cat n1/results.copy; printf '{"torn'; } > n1/victim.jsonl
before=$(cksum < n1/victim.jsonl); rm -f n1/eval/results.jsonl
ln -s "$PWD/n1/victim.jsonl" n1/eval/results.jsonl
"$PY" "$root/bench/alignment_effect.py" --backend scripted --replay n1/eval \
  --final-prompt authors --quiet > n1/out.log 2>&1
[ "$(cksum < n1/victim.jsonl)" = "$before" ] && grep -q "symbolic link" n1/out.log \
  && no_traceback n1/out.log
check "N1 replay on a linked results.jsonl" $? "$(tail -1 n1/out.log)"

# N2: an import holds the folder lock from start to finish.
rm -rf n2 && mkdir n2
"$PY" - <<'PY'
import json
turns = [{"from": "human", "value": "hi " * 50}, {"from": "gpt", "value": "hello " * 50}]
rows = [{"id": str(i), "conversations": turns} for i in range(20_000)]
json.dump(rows, open("n2/big.json", "w"))
PY
ma import n2/big.json -o n2/out --no-export > n2/import.log 2>&1 & imp=$!
sleep 1
ma "${GEN[@]}" -o n2/out > n2/gen.log 2>&1 & gen=$!
ma import n2/big.json -o n2/out --no-export > n2/import2.log 2>&1; second_rc=$?
wait $gen; gen_rc=$?
wait $imp; imp_rc=$?
# Whichever comes second is refused (by the lock while the import runs, or because the
# folder is an import by then); the import's 20,000 samples are all there.
lines=$(wc -l < n2/out/samples.jsonl)
[ $imp_rc = 0 ] && [ $gen_rc = 2 ] && [ $second_rc = 2 ] && [ "$lines" = 20000 ]
check "N2 generate and a 2nd import during an import" $? \
  "import $imp_rc, generate $gen_rc, 2nd import $second_rc, $lines samples"
echo "     (generate: $(grep -o 'Another matrix-align[^.]*\|is a .matrix-align import. folder' \
  n2/gen.log | head -1))"

# N3: every query value and the fragment of --base-url are masked everywhere.
rm -rf n3 && mkdir n3
port=18923
"$PY" -m matrix_align.testing.fake_openai_server --port $port --model fake --base-latency 0 \
  > n3/server.log 2>&1 & server=$!
sleep 2
ma generate -b openai --model fake -s advbench:2 --roles 1 --steps 1 --hub never -q \
  --base-url "http://127.0.0.1:$port/nope?subscription-key=SUBSECRET&sig=SIGSECRET#FRAGSECRET" \
  -o n3/out > n3/term.log 2>&1
kill $server 2>/dev/null
! grep -rlE "SUBSECRET|SIGSECRET|FRAGSECRET" n3 --exclude=server.log
check "N3 --base-url query and fragment masked" $? "found in the files above"

# N7, N15: parser limits and streams.
rm -rf n7 && mkdir n7
"$PY" -c "print('[' * 100000)" > n7/deep.yaml
"$PY" -c "print('seed: ' + '9' * 5000)" > n7/big.yaml
mkfifo n7/fifo.yaml
for config in n7/deep.yaml n7/big.yaml n7/fifo.yaml /dev/zero; do
  ma simulate -b scripted --config "$config" hi > n7/out.log 2>&1; rc=$?
  [ $rc = 2 ] && no_traceback n7/out.log; check "N7/N15 --config $config" $? "rc $rc"
done
ma simulate -b scripted --set "seed=$("$PY" -c "print('1' * 5000)")" hi > n7/out.log 2>&1
rc=$?; [ $rc = 2 ] && no_traceback n7/out.log; check "N7 --set seed=<5000 digits>" $? "rc $rc"

# N12, N19, N20.
rm -rf n12 && mkdir n12
for grid in roles=1,01 temperature=0.2,.2 keep-refusals=yes,true,1; do
  ma sweep -b scripted --grid "$grid" -B advbench --limit 1 --metrics refusal --hub never \
    -o n12/s > n12/out.log 2>&1; rc=$?
  [ $rc = 2 ] && grep -q "same settings" n12/out.log; check "N12 --grid $grid" $? "rc $rc"
done
ma evaluate -b scripted -B nosuch -o n12/e/new > /dev/null 2>&1
ma sweep -b scripted --grid roles=1,2 -B advbench --limit 1 -o n12/s/new > /dev/null 2>&1
[ ! -e n12/e ] && [ ! -e n12/s ]; check "N19 no empty --output after a refusal" $? "left"
ma export n1/gen --private > n12/out.log 2>&1; rc=$?
[ $rc = 2 ]; check "N20 export --private without --push-to-hub" $? "rc $rc"
exit $failed
