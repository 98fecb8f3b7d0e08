set terminal pngcairo size 900,520 noenhanced font ',10'
set grid ytics
set key top right
set output 'throughput.png'
set title 'Throughput draining the same pre-loaded events (median of the valid runs)'
set ylabel 'records/s (log scale)'
set logscale y
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [100:*]
unset key
plot 'throughput.dat' using 0:2:xtic(1) with boxes lc rgb '#4477aa', '' using 0:2:(sprintf('%.0f', $2)) with labels offset 0,1
unset logscale y
set yrange [*:*]
set output 'cpu.png'
set title 'CPU seconds per million records (median of the valid runs)'
set ylabel 'CPU s / M records (log scale)'
set logscale y
set yrange [0.1:*]
set style data histograms
set style histogram clustered gap 1
set key top left
plot 'throughput.dat' using 3:xtic(1) title 'system under test' lc rgb '#4477aa', '' using 4 title 'broker' lc rgb '#cc6677'
unset logscale y
set yrange [*:*]
set style data lines
set output 'workers.png'
set title 'loginflow throughput against workers and ordering'
set xlabel '--workers'
set ylabel 'records/s'
set yrange [0:*]
set key bottom right
set xtics (1, 2, 4)
set logscale x 2
plot 'workers.dat' using 1:2 with linespoints lw 2 pt 7 title '--ordering key', 'workers.dat' using 1:3 with linespoints lw 2 pt 7 title '--ordering partition', 'workers.dat' using 1:4 with linespoints lw 2 pt 7 title '--ordering unordered'
unset logscale x
set xtics autofreq
unset xlabel
set yrange [*:*]
set output 'progress.png'
set title 'Progress of the first valid throughput run of each system (outputs acknowledged, sampled every probe)'
set xlabel 'seconds since the first output'
set ylabel '% of the outputs'
set yrange [0:105]
set xrange [-0.5:*]
set key bottom right
plot 'progress_loginflow.dat' using 1:2 with lines lw 2 title 'loginflow (1,000,000 events)', 'progress_passthrough.dat' using 1:2 with lines lw 2 title 'passthrough (1,000,000 events)', 'progress_python.dat' using 1:2 with lines lw 2 title 'python (100,000 events)'
unset xlabel
set yrange [*:*]
set xrange [*:*]
set terminal pngcairo size 1100,560 noenhanced font ',10'
set output 'latency.png'
set xtics noenhanced font ',8'
set rmargin 16
set title 'End-to-end latency at a fixed offered rate (% of loginflow max), input timestamp to output acknowledged'
set ylabel 'ms (log scale)'
set logscale y
set yrange [1:106459]
set bmargin 5
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.6 border -1
set key top left
set arrow 1 from graph 0, first 20 to graph 1, first 20 nohead dt 2 lc rgb 'red'
set label 1 'p99 target 20 ms' at graph 1.01, first 20 tc rgb 'red'
plot 'latency.dat' using 2:xtic(strcol(5)."\n".strcol(6)."\n".strcol(7)) title 'p50' lc rgb '#88ccee', '' using 3 title 'p99' lc rgb '#4477aa', '' using 4 title 'p99.9' lc rgb '#332288'
unset arrow 1
unset label 1
unset logscale y
set bmargin
set rmargin
