#!/usr/bin/env bash
# Checks, both ways, that kiln and llama.cpp generate the same greedy text from
# the same GGUF files:
#
#   bash bench/peers/llama_interop.sh LLAMA_CPP_DIR [KILN_BIN] [MODEL_DIR]
#
# KILN_BIN defaults to build/release/kiln, MODEL_DIR to models/kjv-llama; a
# KILN_BIN of "none" runs only the llama.cpp side (and prints its texts).
#
#  * kiln -> llama.cpp: `kiln quantize MODEL_DIR kiln-T.gguf --type T` for T in
#    f32 q8_0 q4_0 q4_k_m.
#  * llama.cpp -> kiln: bench/peers/hf_to_gguf.py writes ref-f32.gguf (the
#    checkpoint's f32 weights), `llama-quantize ref-f32.gguf ref-T.gguf T` for
#    T in Q8_0 Q4_0 Q4_K_M.
#
# On every file, N=48 greedy tokens from each of 3 prompts by both:
#  * kiln: `kiln generate -m F -p P -n 48 --temp 0 --json -q` (one JSON line
#    {"prompt_tokens", "tokens", "text"}; it adds BOS);
#  * llama.cpp: the llama-simple example (greedy sampler, built here if it is
#    missing), `llama-simple -m F -n 48 P`. It tokenizes with add_special, so
#    it adds BOS as the file's tokenizer.ggml.add_bos_token asks (both
#    converters write true), and parse_special. Its stdout is the prompt's
#    pieces (BOS printed as "<s>", the first word with its prefix space:
#    "<s> And God said"), then the generated pieces, then "\n"; it stops early
#    at an end-of-generation token (not printed). Timing goes to stderr. The
#    echo is taken from a second run with -n 0 (prompt only) and stripped; the
#    prompt token count it reports on stderr must equal kiln's.
#
# Agreement: both generated texts are tokenized with MODEL_DIR/tokenizer.model
# by python sentencepiece with its normalizer replaced by identity and no
# dummy prefix (so a continuation " unto him" tokenizes as the model generated
# it and nothing is collapsed, as llama.cpp tokenizes), and the common prefix of
# the two id lists is counted; kiln's own ids are used to check that this
# re-tokenization reproduces them (a note is printed where it does not).
# kiln's JSON lists the EOS it stopped at (its "text" does not); that EOS is
# dropped, as llama-simple stops at it without printing it.
# Prints a table: file, prompt, tokens agreeing / 48, identical text yes/no,
# and how many tokens each generated (fewer than 48: it stopped at EOS), then
# both texts for every row that differs.
# Exits 0 when texts differ (it is a measurement) and 1 when a tool fails (the
# run goes on without it: the rows it would have made say FAILED). Needs
# Debian's python3 with python3-numpy and python3-sentencepiece; the kiln
# binary is copied first, so a rebuild during the run does not disturb it.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
LLAMA_CPP=$(cd "$1" && pwd)
KILN=${2:-build/release/kiln}
MODEL_DIR=${3:-models/kjv-llama}
N=48
PROMPTS=("And God said" "In the beginning" "The LORD is my shepherd")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$LLAMA_CPP/build/bin
py() { command -p python3 "$@"; }

[[ -f $MODEL_DIR/tokenizer.model && -f $MODEL_DIR/config.json ]] || { echo "no model at $MODEL_DIR" >&2; exit 1; }
if [[ $KILN != none && ! -x $KILN ]]; then echo "no kiln binary at $KILN" >&2; exit 1; fi
if [[ ! -x $BIN/llama-simple ]]; then
  echo "building llama-simple" >&2
  cmake --build "$LLAMA_CPP/build" --target llama-simple -j2 >&2
fi
for b in llama-simple llama-quantize; do
  [[ -x $BIN/$b ]] || { echo "no $BIN/$b" >&2; exit 1; }
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/out"
if [[ $KILN != none ]]; then
  # A private copy, so that a rebuild of KILN_BIN during the run cannot break it.
  cp "$KILN" "$TMP/kiln"
  KILN=$TMP/kiln
  "$KILN" --help >/dev/null || { echo "$KILN does not run" >&2; exit 1; }
fi

# A failing tool makes the exit status 1; the run goes on without what it
# should have made (a file that failed to convert is skipped, a failed
# generation is a FAILED row) and the table is still printed.
status=0
# try LOG CMD...: runs CMD with stdout+stderr to LOG; on failure shows LOG's tail.
try() {
  local log=$1
  shift
  local rc=0
  "$@" >"$log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAILED (exit $rc): $*" >&2
    tail -n 5 "$log" >&2
    status=1
  fi
  return $rc
}

files=()
if [[ $KILN != none ]]; then
  for t in f32 q8_0 q4_0 q4_k_m; do
    echo "kiln quantize --type $t" >&2
    try "$TMP/kiln-$t.log" "$KILN" quantize "$MODEL_DIR" "$TMP/kiln-$t.gguf" --type "$t" -q && files+=("kiln-$t")
  done
fi
echo "hf_to_gguf.py -> ref-f32" >&2
if try "$TMP/ref-f32.log" py "$HERE/hf_to_gguf.py" "$LLAMA_CPP" "$MODEL_DIR" "$TMP/ref-f32.gguf"; then
  files+=("ref-f32")
  for t in Q8_0 Q4_0 Q4_K_M; do
    echo "llama-quantize $t" >&2
    try "$TMP/ref-$t.log" "$BIN/llama-quantize" "$TMP/ref-f32.gguf" "$TMP/ref-$t.gguf" "$t" && files+=("ref-$t")
  done
fi

# gen WHO OUT ERR CMD...: runs a generator, stdout to OUT (for llama-simple the
# text, kept apart from its timing on stderr); on failure writes OUT.rc.
gen() {
  local who=$1 out=$2 err=$3
  shift 3
  local rc=0
  "$@" >"$out" 2>"$err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAILED (exit $rc): $who: $*" >&2
    tail -n 3 "$err" >&2
    echo "$rc" >"$out.rc"
    status=1
  fi
}

: >"$TMP/cases.tsv"
for f in "${files[@]}"; do
  echo "generating from $f.gguf" >&2
  for i in "${!PROMPTS[@]}"; do
    p=${PROMPTS[$i]}
    o=$TMP/out/$f.$i
    gen llama-simple "$o.llama" "$o.llama.err" "$BIN/llama-simple" -m "$TMP/$f.gguf" -n "$N" "$p"
    gen llama-simple "$o.echo" "$o.echo.err" "$BIN/llama-simple" -m "$TMP/$f.gguf" -n 0 "$p"
    if [[ $KILN != none ]]; then
      gen kiln "$o.kiln" "$o.kiln.err" "$KILN" generate -m "$TMP/$f.gguf" -p "$p" -n "$N" --temp 0 --json -q
    fi
    printf '%s\t%s\t%s\n' "$f" "$i" "$p" >>"$TMP/cases.tsv"
  done
done

cat >"$TMP/compare.py" <<'PY'
import json, os, re, sys
import sentencepiece as spm

out_dir, cases_path, model_path, n, with_kiln = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"

def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7F) << s; s += 7
        if c < 0x80:
            return r, i

def enc(v):
    o = bytearray()
    while v >= 0x80:
        o.append((v & 0x7F) | 0x80); v >>= 7
    o.append(v)
    return bytes(o)

def with_normalizer(proto, dummy_prefix):
    """The ModelProto with normalizer_spec (field 3) replaced by identity, no
    whitespace removal, escaped whitespace and the given add_dummy_prefix."""
    norm = enc(10) + enc(8) + b"identity" + enc(24) + bytes([dummy_prefix]) + enc(32) + b"\0" + enc(40) + b"\1"
    out, i = bytearray(), 0
    while i < len(proto):
        start = i
        key, i = varint(proto, i)
        wire = key & 7
        if wire == 0: _, i = varint(proto, i)
        elif wire == 1: i += 8
        elif wire == 5: i += 4
        elif wire == 2: m, i = varint(proto, i); i += m
        else: raise ValueError("bad protobuf wire type")
        out += enc(26) + enc(len(norm)) + norm if key >> 3 == 3 else proto[start:i]
    return bytes(out)

proto = open(model_path, "rb").read()
cont = spm.SentencePieceProcessor(model_proto=with_normalizer(proto, 0))  # continuation text
full = spm.SentencePieceProcessor(model_proto=with_normalizer(proto, 1))  # a prompt, as llama.cpp tokenizes it
bos = full.bos_id()

def piece_bytes(i):
    """What llama.cpp's token_to_piece(special=true) prints for id i."""
    if full.is_byte(i):
        return bytes([int(full.id_to_piece(i)[3:5], 16)])
    return full.id_to_piece(i).replace("\u2581", " ").encode("utf-8")

def retok(b):
    return cont.encode(b.decode("utf-8", errors="replace"))

def common(a, b):
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k

def failed(path):
    return open(path + ".rc").read().strip() if os.path.exists(path + ".rc") else None

rows, notes = [], []
for line in open(cases_path, encoding="utf-8"):
    f, i, prompt = line.rstrip("\n").split("\t")
    base = os.path.join(out_dir, f"{f}.{i}")
    row = {"file": f, "prompt": prompt, "llama": None, "llama_n": None, "kiln": None, "kiln_n": None,
           "llama_rc": failed(base + ".llama") or failed(base + ".echo"), "kiln_rc": None}
    rows.append(row)
    want_prompt = [bos] + full.encode(prompt)
    llama_ids = None
    if row["llama_rc"] is None:
        raw = open(base + ".llama", "rb").read()
        echo = open(base + ".echo", "rb").read()
        err = open(base + ".llama.err", encoding="utf-8", errors="replace").read()
        if not (echo.endswith(b"\n") and raw.endswith(b"\n") and raw.startswith(echo[:-1])):
            sys.exit(f"{f}: llama-simple's output {raw[:80]!r} does not start with its prompt echo {echo!r}")
        echo = echo[:-1]
        row["llama"] = llama = raw[len(echo):-1]
        m = re.search(r"prompt eval time =.*/\s*(\d+) tokens", err)
        d = re.search(r"decoded (\d+) tokens", err)
        llama_prompt_n = int(m.group(1)) if m else None
        row["llama_n"] = int(d.group(1)) if d else None
        if echo != b"".join(piece_bytes(t) for t in want_prompt):
            notes.append(f"{f} prompt {i}: llama.cpp echoed {echo!r}, not the pieces of {want_prompt}")
        if llama_prompt_n is not None and llama_prompt_n != len(want_prompt):
            notes.append(f"{f} prompt {i}: llama.cpp evaluated {llama_prompt_n} prompt tokens, "
                         f"kiln's tokenization has {len(want_prompt)}")
        llama_ids = retok(llama)
        if row["llama_n"] is not None and row["llama_n"] != len(llama_ids):
            notes.append(f"{f} prompt {i}: llama.cpp generated {row['llama_n']} tokens; "
                         f"its text re-tokenizes to {len(llama_ids)}")
    if not with_kiln:
        continue
    row["kiln_rc"] = failed(base + ".kiln")
    if row["kiln_rc"] is not None:
        continue
    k = json.loads(open(base + ".kiln", encoding="utf-8").read().strip().splitlines()[-1])
    tokens = k["tokens"]
    if tokens and tokens[-1] == full.eos_id():
        tokens = tokens[:-1]  # kiln lists the EOS it stopped at; llama-simple stops without printing it
    row["kiln"] = kb = b"".join(piece_bytes(t) for t in tokens)
    row["kiln_n"] = len(tokens)
    if k["prompt_tokens"] != want_prompt:
        notes.append(f"{f} prompt {i}: kiln's prompt tokens {k['prompt_tokens']} != {want_prompt}")
    if k["text"].encode("utf-8") != kb:
        notes.append(f"{f} prompt {i}: kiln's text {k['text']!r} is not the pieces of its tokens {kb!r}")
    kiln_ids = retok(kb)
    if kiln_ids != tokens:
        notes.append(f"{f} prompt {i}: kiln's tokens are not what its text re-tokenizes to; "
                     "agreement counts the re-tokenization")
    if llama_ids is not None:
        row["agree"] = common(kiln_ids, llama_ids)
        row["identical"] = kb == llama

def show(b):
    return repr(b.decode("utf-8", errors="replace"))

if with_kiln:
    print(f"{'file':<12} {'prompt':<26} {'agree':>7}  identical  tokens kiln/llama")
    for r in rows:
        if "agree" in r:
            print(f"{r['file']:<12} {r['prompt']:<26} {r['agree']:>3} / {n}  {'yes' if r['identical'] else 'no':<9}"
                  f"  {r['kiln_n']}/{r['llama_n']}")
        else:
            why = ", ".join(f"{w} FAILED (exit {r[w + '_rc']})" for w in ("kiln", "llama") if r[w + "_rc"] is not None)
            print(f"{r['file']:<12} {r['prompt']:<26} {'-':>3} / {n}  {why}")
    compared = [r for r in rows if "agree" in r]
    print(f"\n{sum(r['identical'] for r in compared)} of {len(compared)} compared identical"
          f" ({len(rows) - len(compared)} not compared: a generator failed)")
    for r in compared:
        if not r["identical"]:
            print(f"\n{r['file']} / {r['prompt']!r}:\n  kiln:      {show(r['kiln'])}\n  llama.cpp: {show(r['llama'])}")
else:
    print(f"{'file':<12} {'prompt':<26} tokens  llama.cpp text")
    for r in rows:
        text = show(r["llama"]) if r["llama"] is not None else f"FAILED (exit {r['llama_rc']})"
        print(f"{r['file']:<12} {r['prompt']:<26} {r['llama_n']!s:>6}  {text}")
for note in notes:
    print("note:", note)
PY

with_kiln=1
[[ $KILN == none ]] && with_kiln=0
py "$TMP/compare.py" "$TMP/out" "$TMP/cases.tsv" "$MODEL_DIR/tokenizer.model" "$N" "$with_kiln"
exit "$status"
