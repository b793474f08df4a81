// Package views is the query side of cdcflow: read models kept in goka group
// tables, served through goka views, and the data realtime dashboards read.
package views
