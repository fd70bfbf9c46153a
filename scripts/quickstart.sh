#!/usr/bin/env bash
# The README's first command: installs dependencies, builds, imports Fashion-MNIST from the
# Debian package, trains examples/fashion_mnist/mlp.prototxt with 2 workers under mpirun and
# prints the test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh

source_dir=/usr/share/datasets/fashion-mnist
mkdir -p data/fashion_mnist
for split in train t10k; do
  name=$([[ $split == train ]] && echo train || echo test)
  if [[ ! -f data/fashion_mnist/$name.h5 ]]; then
    build/dpt data import-idx --images "$source_dir/$split-images-idx3-ubyte.gz" \
      --labels "$source_dir/$split-labels-idx1-ubyte.gz" --out "data/fashion_mnist/$name.h5"
  fi
done

# Open MPI refuses to run as root unless told that is intended (containers, CI machines).
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
run_dir=runs/fashion_mnist
# --resume auto: a quickstart interrupted (Ctrl-C saves a checkpoint) continues where it stopped.
mpirun -np 2 --oversubscribe build/dpt train examples/fashion_mnist/mlp.prototxt \
  --run-dir "$run_dir" --resume auto
build/dpt eval examples/fashion_mnist/mlp.prototxt --weights "$run_dir/model.h5"
