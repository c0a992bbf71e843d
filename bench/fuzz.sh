#!/usr/bin/env bash
# Runs every fuzz target of every module, one at a time, and commits what the
# fuzzer found as seed corpus.
#
#   bench/fuzz.sh                     # every package of every module
#   bench/fuzz.sh ./ingress ./receipt # only these packages
#
# For each target (go test -list '^Fuzz'), it runs
#
#   go test -run '^$' -fuzz "^Name$" -fuzztime "$FUZZTIME" ./pkg
#
# then copies the corpus the fuzzer keeps in $(go env GOCACHE)/fuzz/<import
# path>/<Name>/ into the package's testdata/fuzz/<Name>/, where plain
# `go test` runs it as seed corpus. Files already committed are never
# removed; new ones are added smallest first until the directory holds
# MAX_CORPUS files, and files larger than MAX_ENTRY_BYTES are not copied.
# Corpus files are named by the hash of their content, so a file already in
# testdata is never copied twice. Cache entries whose value types do not
# match the target (left over from an older signature) are skipped, and the
# copied corpus is checked with a plain `go test -run '^Name$'` run.
#
# A failing input found by the fuzzer stays where go test writes it
# (testdata/fuzz/<Name>/), and the script exits non-zero after running the
# remaining targets. The script is not part of CI; CI runs the committed
# corpora as ordinary tests.
#
# Environment:
#   FUZZTIME         how long each target runs (default 30s; go's -fuzztime
#                    syntax, so "10000x" works too)
#   MAX_CORPUS       most files kept per target in testdata (default 200)
#   MAX_ENTRY_BYTES  largest corpus file copied (default 16384)
#   FUZZ_TIMEOUT     go test -timeout for one target (default: FUZZTIME plus
#                    10 minutes when FUZZTIME is a duration, else go's default)
#   FUZZ_LOG_DIR     where the go test output of each target is kept
#                    (default: a temporary directory, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-30s}"
MAX_CORPUS="${MAX_CORPUS:-200}"
MAX_ENTRY_BYTES="${MAX_ENTRY_BYTES:-16384}"

if [ $# -eq 0 ]; then
	set -- github.com/graylane/graylane/... # every module of the workspace
fi

module=github.com/graylane/graylane
cache="$(go env GOCACHE)/fuzz"

if [ -n "${FUZZ_LOG_DIR:-}" ]; then
	logs="$FUZZ_LOG_DIR"
	mkdir -p "$logs"
else
	logs="$(mktemp -d)"
	trap 'rm -rf "$logs"' EXIT
fi

# The -timeout of one target: FUZZTIME plus ten minutes for building and
# for the seed corpus, when FUZZTIME is a plain duration.
timeout_flag=()
if [ -n "${FUZZ_TIMEOUT:-}" ]; then
	timeout_flag=(-timeout "$FUZZ_TIMEOUT")
elif [[ "$FUZZTIME" =~ ^([0-9]+)(s|m|h)$ ]]; then
	n="${BASH_REMATCH[1]}"
	case "${BASH_REMATCH[2]}" in
	s) secs=$n ;;
	m) secs=$((n * 60)) ;;
	h) secs=$((n * 3600)) ;;
	esac
	timeout_flag=(-timeout "$((secs + 600))s")
fi

# signature prints the value types of a corpus file, one per line: the
# text before the first '(' of each line after the header.
signature() {
	tail -n +2 "$1" | sed -e 's/(.*//'
}

# count prints the number of regular files in directory $1 (0 if absent).
count() {
	if [ -d "$1" ]; then
		find "$1" -maxdepth 1 -type f | wc -l | tr -d ' '
	else
		echo 0
	fi
}

# copy_corpus copies the cache entries of target $2 of package $1 (import
# path) into testdata directory $3, within the limits, and prints the
# number of files copied. Entries written by this run (newer than marker $4)
# give the expected value types; failing that, the committed files do, and
# failing that, the types most cache entries have.
copy_corpus() {
	local pkg="$1" name="$2" dst="$3" marker="$4"
	local src="$cache/$pkg/$name"
	local copied=0
	if [ ! -d "$src" ]; then
		echo 0
		return
	fi
	mkdir -p "$dst"
	local want="" f
	f="$(find "$src" -maxdepth 1 -type f -newer "$marker" | head -n 1)"
	if [ -z "$f" ]; then
		f="$(find "$dst" -maxdepth 1 -type f | head -n 1)"
	fi
	if [ -n "$f" ]; then
		want="$(signature "$f")"
	else
		# Nothing new and nothing committed: the types most cache entries
		# have (the plain test run below checks the guess).
		local sig best=0 n
		declare -A seen=()
		for f in "$src"/*; do
			[ -f "$f" ] || continue
			sig="$(signature "$f")"
			n=$((${seen["$sig"]:-0} + 1))
			seen["$sig"]=$n
			if [ "$n" -gt "$best" ]; then
				best=$n
				want="$sig"
			fi
		done
	fi
	if [ -z "$want" ]; then
		echo 0
		return
	fi
	local have
	have="$(count "$dst")"
	# Smallest first; ties broken by name, so that runs are reproducible.
	while IFS=$'\t' read -r size file; do
		if [ "$have" -ge "$MAX_CORPUS" ]; then
			break
		fi
		local base
		base="$(basename "$file")"
		if [ -e "$dst/$base" ] || [ "$size" -gt "$MAX_ENTRY_BYTES" ]; then
			continue
		fi
		if [ "$(head -n 1 "$file")" != "go test fuzz v1" ] || [ "$(signature "$file")" != "$want" ]; then
			continue
		fi
		cp "$file" "$dst/$base"
		echo "$dst/$base" >>"$logs/copied"
		have=$((have + 1))
		copied=$((copied + 1))
	done < <(find "$src" -maxdepth 1 -type f -printf '%s\t%p\n' | sort -t $'\t' -k1,1n -k2,2)
	echo "$copied"
}

echo "== listing fuzz targets ($*)"
# go test prints the output of each package together, the list of names
# first and then a line "ok <import path> <time>".
if ! list="$(go test -list '^Fuzz' "$@" 2>&1)"; then
	echo "$list"
	echo "FAIL: could not list the fuzz targets (a package does not build?)"
	exit 1
fi
targets=()
pending=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*)
		pending+=("$line")
		;;
	ok*)
		pkg="$(awk '{print $2}' <<<"$line")"
		for n in "${pending[@]}"; do
			targets+=("$pkg $n")
		done
		pending=()
		;;
	FAIL*)
		pending=()
		;;
	esac
done <<<"$list"

if [ "${#targets[@]}" -eq 0 ]; then
	echo "no fuzz targets found"
	exit 0
fi
echo "${#targets[@]} targets, $FUZZTIME each"

rows=()
failed=0
for t in "${targets[@]}"; do
	pkg="${t% *}"
	name="${t#* }"
	dir="$(go list -f '{{.Dir}}' "$pkg")"
	rel="./${dir#"$PWD"/}"
	if [ "$dir" = "$PWD" ]; then
		rel="."
	fi
	short="${pkg#"$module"/}"
	log="$logs/${short//\//_}.$name.log"
	testdata="$dir/testdata/fuzz/$name"
	before="$(count "$testdata")"
	marker="$logs/marker"
	touch "$marker"
	: >"$logs/copied"

	echo "== $short $name"
	start=$SECONDS
	status=ok
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "${timeout_flag[@]}" "$rel" >"$log" 2>&1; then
		status=FAIL
		failed=1
		tail -n 40 "$log"
	fi
	secs=$((SECONDS - start))

	stats="$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)"
	execs="$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$stats")"
	interesting="$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$stats")"

	copied=0
	if [ "$status" = ok ]; then
		copied="$(copy_corpus "$pkg" "$name" "$testdata" "$marker")"
		if [ "$copied" -gt 0 ]; then
			# The committed corpus must pass as plain tests.
			if ! go test -count=1 -run "^${name}\$" "$rel" >"$log.check" 2>&1; then
				if grep -q 'malformed' "$log.check"; then
					# Not an input the target fails on, but a file it cannot read:
					# take back what was copied.
					xargs rm -f <"$logs/copied"
					copied=0
					status="FAIL(corpus)"
				else
					status="FAIL(seed)"
				fi
				failed=1
				tail -n 40 "$log.check"
			fi
		fi
	else
		crash="$(grep -oE 'Failing input written to [^ ]+' "$log" | tail -n 1 | sed 's/Failing input written to //' || true)"
		if [ -n "$crash" ]; then
			echo "   failing input: $rel/$crash"
			echo "   re-run with:   go test -run '${name}/$(basename "$crash")' $rel"
		fi
	fi
	after="$(count "$testdata")"
	rows+=("$(printf '%-44s %-12s %12s %6s %7s %5s %5s %5ss' \
		"$short.$name" "$status" "${execs:--}" "${interesting:--}" "$copied" "$before" "$after" "$secs")")
done

echo
echo "== summary (FUZZTIME=$FUZZTIME, MAX_CORPUS=$MAX_CORPUS)"
printf '%-44s %-12s %12s %6s %7s %5s %5s %6s\n' target status execs new copied was now time
for r in "${rows[@]}"; do
	echo "$r"
done
echo "(new: inputs the fuzzer found interesting in this run; copied: files added to testdata/fuzz; was/now: files there before and after)"

if [ "$failed" -ne 0 ]; then
	echo "FAIL: see the output above; failing inputs are in the package's testdata/fuzz/<target>/"
	exit 1
fi
