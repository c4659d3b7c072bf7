#!/usr/bin/env bash
# Regenerates api/v1beta2/zz_generated.deepcopy.go and the CRDs in
# config/crd/bases from the Go types and their kubebuilder markers.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTROLLER_GEN=(go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0)
"${CONTROLLER_GEN[@]}" object paths=./api/...
rm -f config/crd/bases/*.yaml
"${CONTROLLER_GEN[@]}" crd paths=./api/... output:crd:artifacts:config=config/crd/bases
# controller-gen names a kind after its Go type; the guide's Route is the Go
# type StandaloneRoute because Route names the entry of spec.routes.
sed -i -e 's/^    kind: StandaloneRoute$/    kind: Route/' -e 's/^    listKind: StandaloneRouteList$/    listKind: RouteList/' \
  config/crd/bases/appmesh.k8s.aws_routes.yaml
# Helm installs the CRDs of a chart's crds/ folder before its templates.
rm -f charts/meshgate/crds/*.yaml
mkdir -p charts/meshgate/crds
cp config/crd/bases/*.yaml charts/meshgate/crds/
