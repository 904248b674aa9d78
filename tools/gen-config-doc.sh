#!/usr/bin/env bash
# tools/gen-config-doc.sh BINARY — rewrites the component reference in docs/configuration.md
# (the yaml block after "## Shape") from `BINARY components --verbose`, so the document is
# the field tables themselves. tests/integration/docs_config.test.mjs fails when it is stale.
set -euo pipefail
bin=${1:?usage: tools/gen-config-doc.sh path/to/llmgate}
doc=docs/configuration.md
ref=$("$bin" components --verbose)
awk -v ref="$ref" '
  /^## Shape/ { print; in_shape = 1; next }
  in_shape && /^```yaml/ { print; print ref; skipping = 1; next }
  skipping && /^```/ { print; skipping = 0; in_shape = 0; next }
  skipping { next }
  { print }
' "$doc" > "$doc.tmp"
mv "$doc.tmp" "$doc"
