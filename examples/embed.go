// Package examples holds the bundled example manifests; `meshgate demo`
// serves the demo set from this embedded copy so it needs no files on disk.
package examples

import "embed"

// Demo is examples/demo: the guide's four scenarios as one complete set.
//
//go:embed demo/*.yaml
var Demo embed.FS
