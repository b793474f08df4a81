// Package cmd holds cdcflow's binaries. Each is thin wiring of flags and
// environment variables over the library packages; see cmd/cdcflow.
package cmd
