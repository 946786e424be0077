#!/usr/bin/env bash
# fuzz/run.sh [-t SECONDS] [-b BUILD_DIR] [-j JOBS] [--build-only] [TARGET...]
# Builds Moat's libFuzzer targets (clang 14, ASan + UBSan, ccache) in BUILD_DIR (default
# build-fuzz/ at the top of the tree, or $MOAT_FUZZ_BUILD_DIR) and runs each TARGET (default:
# all) for SECONDS (default 20, or $MOAT_FUZZ_SECONDS) from its seed corpus fuzz/corpus/<target>
# (kept pristine: new inputs go to BUILD_DIR/corpus/<target>), with fuzz/dict/<dict> where one
# applies. Before fuzzing, every file in fuzz/regressions/<target>/ is replayed. Prints a table
# (runs, exec/s, cov, ft, corpus, result) and exits non-zero if any target crashed, leaked,
# timed out or violated an invariant; the crashing inputs are in BUILD_DIR/artifacts/<target>/.
# $MOAT_FUZZ_SEED fixes libFuzzer's seed (tools/test.sh: CI explores the same inputs each run, so
# it fails on a regression, not on a new find; `make fuzz`/`fuzz-long` explore afresh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
seconds=${MOAT_FUZZ_SECONDS:-20}
build=${MOAT_FUZZ_BUILD_DIR:-$top/build-fuzz}
jobs=2
build_only=0
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    -t|--time) seconds=$2; shift 2 ;;
    -b|--build-dir) build=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
build=$(realpath -m "$build")
all=(extract_layer image_json reference http_request url container_spec oci_spec dns_query
     registry_auth tar_split)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# Per-target libFuzzer options: dictionaries and input sizes.
declare -A extra=(
  [extract_layer]="-max_len=65536 -dict=$here/dict/tar.dict"
  [image_json]="-max_len=16384 -dict=$here/dict/json.dict"
  [reference]="-max_len=512 -dict=$here/dict/reference.dict"
  [http_request]="-max_len=16384 -dict=$here/dict/http.dict"
  [url]="-max_len=2048 -dict=$here/dict/http.dict"
  [container_spec]="-max_len=16384 -dict=$here/dict/json.dict"
  [oci_spec]="-max_len=32768 -dict=$here/dict/json.dict"
  [dns_query]="-max_len=1024"
  [registry_auth]="-max_len=4096 -dict=$here/dict/json.dict"
  [tar_split]="-max_len=8192"
)

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/moat-ccache} CCACHE_BASEDIR=$top CCACHE_NOHASHDIR=1
t0=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$here" -B "$build" -G Ninja >/dev/null
fi
ninja -C "$build" -j"$jobs" $(printf 'fuzz_%s ' "${targets[@]}")
t1=$(date +%s)
echo "fuzz: build took $((t1 - t0)) s"
[ $build_only = 1 ] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=()
summary_open=()
failed=0
for t in "${targets[@]}"; do
  bin=$build/fuzz_$t
  log=$build/logs/$t.log
  work=$build/corpus/$t
  art=$build/artifacts/$t
  mkdir -p "$build/logs" "$work" "$art"
  # extract_layer drops root to 65534 (see extract_layer.cc): let it write its findings.
  [ "$(id -u)" = 0 ] && [ "$t" = extract_layer ] && chmod 0777 "$work" "$art"
  result=ok
  # Replays first: a fixed regression input must not crash again. Files named open-* are bugs
  # reported but not fixed yet: replayed and listed, not counted as failures (the fuzzing run
  # below may well find them again, and that does fail).
  for f in "$here/regressions/$t"/*; do
    [ -f "$f" ] || continue
    if ! "$bin" ${extra[$t]} "$f" >"$build/logs/$t.replay.log" 2>&1; then
      case $(basename "$f") in
        open-*) summary_open+=("$t: open bug still present: ${f#$top/}") ;;
        *) result="REGRESSION ${f#$top/} (see $build/logs/$t.replay.log)"; failed=1 ;;
      esac
    fi
  done
  rc=0
  "$bin" ${extra[$t]} ${MOAT_FUZZ_SEED:+-seed=$MOAT_FUZZ_SEED} -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "$work" "$here/corpus/$t" >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    result="FAILED rc=$rc (see $log; inputs in $art)"
    failed=1
  fi
  line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
  runs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1 || echo "-")
  eps=$(grep -oP 'stat::average_exec_per_sec:\s*\K[0-9]+' "$log" | tail -1 || echo "-")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line"); ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$line")
  summary+=("$(printf '%-15s %9s %7s %6s %6s %12s  %s' "$t" "${runs:--}" "${eps:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$result")")
done
t2=$(date +%s)
printf '\n%-15s %9s %7s %6s %6s %12s  %s\n' target runs exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
[ ${#summary_open[@]} -eq 0 ] || printf '%s\n' "${summary_open[@]}"
echo "fuzz: build $((t1 - t0)) s, runs $((t2 - t1)) s (${seconds} s per target)"
exit $failed
