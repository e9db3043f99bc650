#!/usr/bin/env bash
# Render the chromaflow .vpy template with vspipe and encode it with ffmpeg, keeping the input's audio.
#
#   plugins/ffmpeg/vspipe_to_ffmpeg.sh IN OUT [MODE]      MODE: colorize (default) | deflicker | deepfake | both
#
# Programs come from $VSPIPE, $FFMPEG (defaults: vspipe, ffmpeg on PATH); the script from $CHROMAFLOW_VPY
# (default: chromaflow_template.vpy next to this file); $CHROMAFLOW_MODEL picks the model (default base).
# The output appears only when everything succeeded (written to a temporary name, then renamed).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 IN OUT [colorize|deflicker|deepfake|both]" >&2
    exit 2
fi
IN=$1
OUT=$2
MODE=${3:-colorize}
VSPIPE=${VSPIPE:-vspipe}
FFMPEG=${FFMPEG:-ffmpeg}
VPY=${CHROMAFLOW_VPY:-"$(dirname "$0")/chromaflow_template.vpy"}
MODEL=${CHROMAFLOW_MODEL:-base}

[ -f "$IN" ] || { echo "$0: input $IN does not exist" >&2; exit 3; }
IN=$(cd "$(dirname "$IN")" && pwd)/$(basename "$IN")  # vspipe scripts may run in another folder
OUT_DIR=$(dirname "$OUT")
OUT_NAME=$(basename "$OUT")
[ -d "$OUT_DIR" ] || { echo "$0: output folder $OUT_DIR does not exist; create it first" >&2; exit 6; }
PARTIAL="$OUT_DIR/.${OUT_NAME%.*}.partial.${OUT_NAME##*.}"
trap 'rm -f "$PARTIAL"' EXIT

"$VSPIPE" -c y4m -a "input=$IN" -a "mode=$MODE" -a "model=$MODEL" "$VPY" - \
  | "$FFMPEG" -hide_banner -loglevel error -nostdin -y -i - -i "$IN" \
      -map 0:v:0 -map '1:a?' -c:v libx264 -crf 18 -pix_fmt yuv420p -c:a copy "$PARTIAL"
mv -f "$PARTIAL" "$OUT"
trap - EXIT
