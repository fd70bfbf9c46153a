# Sourced by the shell tests: compares the parameters of two HDF5 weight files (h5dump).

# dump_weights FILE: every parameter, one value per line, to 9 significant digits.
dump_weights() {
  local values="$1.values"
  h5ls -r "$1" | awk '$2 == "Dataset" {print $1}' | sort | while read -r name; do
    h5dump -y -w 0 -m '%.9g' -o "$values" -d "$name" "$1" >/dev/null
    tr ',' '\n' <"$values" | awk 'NF {print $1}'
  done
  rm -f "$values"
}

# weights_match A B: every parameter within 2e-5 * max(1, |a|): N ranks sum fp32 values in
# another order than 1 process (see README "Data parallelism").
weights_match() {
  paste <(dump_weights "$1") <(dump_weights "$2") | awk '
    { d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1; if (m < 1) m = 1
      if (d / m > worst) worst = d / m; n++ }
    END { printf "  %d values, worst relative difference %.3g\n", n, worst
          exit !(n > 500 && worst < 2e-5) }'
}
