#!/usr/bin/env bash
# Turns bench/peers.sh's results into a Markdown table and PNG plots
# (gnuplot): errors per tool, and a timeline per load with the restarts
# marked.
#   bench/peers_report.sh DIR RESTARTS     (DIR holds peers.tsv, timeline-*, restarts-*)
set -euo pipefail
OUT=$1
RESTARTS=$2
TSV=$OUT/peers.tsv

# --- the table -------------------------------------------------------------------
{
    echo "| way | load | responses | failed conns / 1000 restarts | failed requests / 1000 restarts | p50 / p99 steady (ms) | p50 / p99 during restarts (ms) | to new serving (ms) | to old gone (ms) | supervisor CPU per restart (ms) / RSS (KiB) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$TSV" | awk -F'\t' '{
        split($15, cm, "/")
        printf "| %s | %s | %s | %s | %s | %.2f / %.2f | %.2f / %.2f | %s | %s | %s / %s |\n",
            $1, $2, $4, $7, $8, $9 / 1000, $10 / 1000, $11 / 1000, $12 / 1000, $13, $14, cm[1], cm[2]
    }'
} > "$OUT/peers.md"

# --- bars: failed connections + requests per 1000 restarts, per way and load ----
awk -F'\t' 'NR > 1 { v[$1, $2] = $7 + $8; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
    END { for (i = 1; i <= n; i++) printf "%s\t%s\t%s\n", order[i], v[order[i], "close"] + 0, v[order[i], "keepalive"] + 0 }' \
    "$TSV" > "$OUT/bars.dat"
gnuplot <<GP
set terminal pngcairo size 1000,520 font "sans,10"
set output "$OUT/peers-errors.png"
set title "Failed connections + failed requests per 1000 restarts ($RESTARTS restarts per way and load; log scale, 0 drawn at 0.1)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.1:*]
set ylabel "failures per 1000 restarts"
set xtics rotate by -25
set key top left
set grid ytics
plot "$OUT/bars.dat" using (\$2 > 0 ? \$2 : 0.1):xtic(1) title "new connection per request", \
     "" using (\$3 > 0 ? \$3 : 0.1) title "keep-alive connections"
GP

# --- timelines: requests/s and errors/s per 100 ms, restarts marked -------------
for load in close keepalive; do
    ways=$(awk -F'\t' -v l="$load" 'NR > 1 && $2 == l { print $1 }' "$TSV")
    [ -n "$ways" ] || continue
    n=0
    for way in $ways; do
        tl=$OUT/timeline-$way-$load.txt
        [ -f "$tl" ] || continue
        # The first 5 seconds of the restart phase: rates per second from 100 ms buckets.
        awk '/^t=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                     if (!t0) t0 = f["epoch_ms"]; t = (f["epoch_ms"] - t0) / 1000
                     if (t <= 5) printf "%.2f\t%d\t%d\n", t, f["ok"] * 10, f["errors"] * 10 }' \
            "$tl" > "$OUT/tl-$way-$load.dat"
        t0=$(awk '/^t=/ { split($2, kv, "="); print kv[2]; exit }' "$tl")
        awk -v t0="$t0" '{ t = ($1 - t0) / 1000; if (t >= 0 && t <= 5) print t }' \
            "$OUT/restarts-$way-$load.txt" > "$OUT/rs-$way-$load.dat"
        n=$((n + 1))
    done
    {
        echo "set terminal pngcairo size 1000,$((150 * n + 60)) font 'sans,9'"
        echo "set output '$OUT/peers-timeline-$load.png'"
        echo "set multiplot layout $n,1 title 'Requests/s (green, left axis) and failures/s (red, right axis), load: $load; restarts marked (grey); first 5 s of the restart run'"
        echo "set xrange [0:5]; set yrange [0:*]; set y2range [0:*]; set y2tics textcolor rgb '#d62728'; set grid ytics; set key off; set lmargin 12; set rmargin 9"
        for way in $ways; do
            [ -f "$OUT/tl-$way-$load.dat" ] || continue
            echo "unset arrow"
            awk '{ printf "set arrow from %s, graph 0 to %s, graph 1 nohead lc rgb \"#bbbbbb\"\n", $1, $1 }' "$OUT/rs-$way-$load.dat"
            echo "set ylabel '$way'"
            # A way that never fails still gets a right axis: 0 to 1.
            if awk '$3 > 0 { f = 1 } END { exit !f }' "$OUT/tl-$way-$load.dat"; then echo "set y2range [0:*]"; else echo "set y2range [0:1]"; fi
            echo "plot '$OUT/tl-$way-$load.dat' using 1:2 with lines lw 1.5 lc rgb '#2a9d3a', \\"
            echo "     '' using 1:3 axes x1y2 with impulses lw 3 lc rgb '#d62728'"
        done
        echo "unset multiplot"
    } | gnuplot
done
rm -f "$OUT"/tl-*.dat "$OUT"/rs-*.dat "$OUT/bars.dat"
cat "$OUT/peers.md"
echo "plots: $OUT/peers-errors.png $OUT/peers-timeline-close.png $OUT/peers-timeline-keepalive.png"
