#!/usr/bin/env bash
# Fails when a C++ source differs from clang-format's output (.clang-format at the root).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.h' '*.cpp' '*.cu' '*.proto' 2>/dev/null | grep -v '\.proto$' || true)
if ((${#files[@]} == 0)); then
  mapfile -t files < <(find core comm optim devices launch tests -name '*.h' -o -name '*.cpp')
fi
bad=()
for file in "${files[@]}"; do
  [[ -f $file ]] || continue
  clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done
if ((${#bad[@]} > 0)); then
  echo "check_format: not clang-formatted (run: clang-format -i FILE):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
