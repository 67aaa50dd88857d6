#!/usr/bin/env bash
# make install works anywhere: install into a temporary prefix, move the prefix, then from another
# directory and with a clean environment (no PYTHONPATH, no HSE_SHARE, no build tree on any path)
# run every tool's --help and --version, the man pages, the bash completion, a short chain
# (hse-synth -> hse-preprocess -> hse-info -> hse-eval) and hse-generate on one CT file with a
# tiny adapter trained here by the installed tools.
set -u
BIN=$(cd "${HSE_BIN_DIR:-build/bin}" && pwd)
SRC=$(cd "${HSE_SOURCE_DIR:-.}" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/cli/common.sh"
cmake --install "$BIN/.." --prefix "$T/first" > "$T/install.log" 2>&1 || { echo "FAIL cmake --install"; cat "$T/install.log"; exit 1; }
mv "$T/first" "$T/moved"
P="$T/moved"
mkdir -p "$T/elsewhere" "$T/home"
cd "$T/elsewhere" || exit 1
run() { env -i HOME="$T/home" PATH="$P/bin:/usr/bin:/bin" LANG=C.UTF-8 "$@"; }
echo "installed: $(du -sh "$P" | cut -f1) in $(find "$P" -type f | wc -l) files"

tools=$(cd "$SRC/tools" && ls -d hse-* | sort)
for t in $tools; do
  [ -x "$P/bin/$t" ] || { bad "$t is not installed"; continue; }
  if run "$t" --help > "$T/help" 2> "$T/help.err" && grep -qi "usage" "$T/help" \
     && run "$t" --version > "$T/ver" 2>&1 && grep -q "^$t " "$T/ver"; then ok "$t --help, --version"; else
    bad "$t --help/--version"; sed 's/^/     /' "$T/help.err" "$T/ver"
  fi
  [ -f "$P/share/man/man1/$t.1" ] && ok "$t.1 installed" || bad "$t.1 missing"
  [ -f "$P/share/bash-completion/completions/$t" ] && ok "$t completion installed" || bad "$t completion missing"
done
if command -v man > /dev/null; then
  run env MANPATH="$P/share/man" man -w hse-embed | grep -q "$P/share/man/man1/hse-embed.1" && ok "man hse-embed with MANPATH" || bad "man -w hse-embed"
else
  echo "note: no man program here; the pages' presence was checked"
fi
# Bash completion from the installed script: flags and the values of a listed flag.
comp() {  # words... : the completions of the last word
  run bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _${1//-/_}; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$P/share/bash-completion/completions/$1" "$@"
}
comp hse-preprocess --keep | grep -qx -- "--keep-going" && ok "completion: --keep -> --keep-going" || bad "completion of flags"
comp hse-preprocess --progress al | grep -qx always && ok "completion: --progress al -> always" || bad "completion of values"
comp hse-eval re | grep -qx report && comp hse-eval retrieval --k | grep -qx -- "--ks" && ok "completion: hse-eval subcommands and their flags" \
  || bad "completion of subcommands"

# A short chain on the installed tools only.
run hse-synth -q -o s --size tiny --n-train 6 --n-valid 2 --seed 3 || bad "hse-synth"
D=s/dataset
M=$D/metadata/train_metadata.csv
run hse-preprocess -q --no-resample --size 8,32,32 --root $D --metadata $M -o v.h5 && run hse-info v.h5 > info.tsv \
  && grep -q "^kind	volumes" info.tsv && ok "hse-synth -> hse-preprocess -> hse-info" || bad "preprocess/info chain"
printf 'a\t1\ta\t0.9\na\t2\tb\t0.1\nb\t1\ta\t0.8\nb\t2\tb\t0.7\n' | run hse-eval retrieval --ks 1,2 > r.tsv \
  && grep -q "^recall@1	0.5" r.tsv && ok "hse-eval" || bad "hse-eval"

# hse-generate on one CT file with a tiny adapter trained here: configs, vocabulary and prompts
# all come from the installed share/hse.
R=$D/radiology_text_reports/train_reports.csv
if run hse-slice -q --no-resample --image-size 32 --slices 16 --root $D --metadata $M -o sl.h5 \
  && run hse-embed -q --slices sl.h5 --random-init 0 --vit2d-config vit2d-tiny -o sf.h5 \
  && run hse-pretrain -q --volumes v.h5 --reports $R --vision-config vit3d-tiny --text-model bert-tiny \
       --vocab bert-base-uncased --batch-size 2 --max-length 32 --max-steps 2 -o c1 \
  && run hse-pretrain -q --stage 2 --stage1 c1 --init c1 --volumes v.h5 --slice-features sf.h5 --reports $R \
       --batch-size 2 --max-length 32 --max-steps 1 -o c2 \
  && run hse-finetune -q --clip c2 --volumes v.h5 --slice-features sf.h5 --reports $R --init-llm phi3-tiny \
       --train-tokenizer 300 --train-llm full --max-steps 2 -o vlm; then
  ok "the installed tools train a tiny adapter"
  mkdir -p "$T/far" && mv c2 vlm "$T/far/"
  one=$(find $D/train -name '*.nii.gz' | sort | head -1)
  run hse-generate --model "$T/far/vlm" --metadata $M --max-new-tokens 4 "$one" > gen.jsonl 2> gen.err \
    && [ "$(wc -l < gen.jsonl)" = 1 ] && ok "hse-generate on one CT file, model folder moved" || { bad "hse-generate"; cat gen.err; }
else
  bad "training a tiny adapter with the installed tools"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
