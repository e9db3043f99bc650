#!/usr/bin/env bash
# ffmpeg decodes, chromaflow filters y4m on stdin/stdout, ffmpeg encodes and puts the input's audio back.
#
#   plugins/ffmpeg/ffmpeg_pipe.sh IN OUT [VERB [CHROMAFLOW OPTIONS...]]     VERB: colorize (default) | deflicker | deepfake
#
# Programs come from $FFMPEG and $CHROMAFLOW (defaults: ffmpeg and chromaflow on PATH). Equivalent to
#   ffmpeg -i in.mp4 -f yuv4mpegpipe - | chromaflow colorize - - | ffmpeg -i - -i in.mp4 -map 0:v -map 1:a? out.mp4
# The output appears only when every stage succeeded (written to a temporary name, then renamed).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 IN OUT [colorize|deflicker|deepfake [options...]]" >&2
    exit 2
fi
IN=$1
OUT=$2
VERB=${3:-colorize}
shift $(( $# < 3 ? $# : 3 ))
FFMPEG=${FFMPEG:-ffmpeg}
CHROMAFLOW=${CHROMAFLOW:-chromaflow}

[ -f "$IN" ] || { echo "$0: input $IN does not exist" >&2; exit 3; }
OUT_DIR=$(dirname "$OUT")
OUT_NAME=$(basename "$OUT")
[ -d "$OUT_DIR" ] || { echo "$0: output folder $OUT_DIR does not exist; create it first" >&2; exit 6; }
PARTIAL="$OUT_DIR/.${OUT_NAME%.*}.partial.${OUT_NAME##*.}"
trap 'rm -f "$PARTIAL"' EXIT

"$FFMPEG" -hide_banner -loglevel error -nostdin -i "$IN" -map 0:v:0 -f yuv4mpegpipe -pix_fmt yuv420p - \
  | "$CHROMAFLOW" "$VERB" - - --quiet "$@" \
  | "$FFMPEG" -hide_banner -loglevel error -nostdin -y -i - -i "$IN" \
      -map 0:v:0 -map '1:a?' -c:v libx264 -crf 18 -pix_fmt yuv420p -c:a copy "$PARTIAL"
mv -f "$PARTIAL" "$OUT"
trap - EXIT
