// Package examples holds runnable applications built only on cdcflow's
// public packages. See examples/orders for the e-commerce orders example.
package examples
