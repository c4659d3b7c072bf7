//go:build race

package dataplane

// raceEnabled is set under the race detector, whose sync.Pool drops a
// random quarter of what is put back.
const raceEnabled = true
