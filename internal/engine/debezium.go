package engine

import "fmt"

// DebeziumTopics returns the change topics of nodes that another Debezium
// connector writes (topologies.DebeziumTable): their records are decoded as
// Debezium's, with positions from their source coordinates. A topic some
// nodes read as cdcflow's and others as Debezium's is an error.
func DebeziumTopics(nodes []Node) (map[string]bool, error) {
	c := inputCollector{kinds: map[string]bool{}}
	for _, n := range nodes {
		n.Run(&c)
	}
	topics := map[string]bool{}
	for t, d := range c.kinds {
		if d {
			topics[t] = true
		}
	}
	return topics, c.err
}

type inputCollector struct {
	kinds map[string]bool
	err   error
}

func (c *inputCollector) input(topic string, debezium bool) {
	if d, ok := c.kinds[topic]; ok && d != debezium && c.err == nil {
		c.err = fmt.Errorf("topic %s is read both as a topic cdcflow's capture writes (topologies.TableOf) and as one another Debezium connector writes (topologies.DebeziumTable): declare it one way", topic)
	}
	c.kinds[topic] = debezium
}

func (c *inputCollector) Metrics(n *Metrics) error         { c.input(n.Input, n.Debezium); return nil }
func (c *inputCollector) Events(n *Events) error           { c.input(n.Input, n.Debezium); return nil }
func (c *inputCollector) SearchIndex(n *SearchIndex) error { c.input(n.Input, n.Debezium); return nil }
func (c *inputCollector) ReadModel(n *ReadModel) error {
	c.input(n.Root.Topic, n.Root.Debezium)
	for _, p := range n.Children {
		c.input(p.Topic, p.Debezium)
	}
	for _, p := range n.Refs {
		c.input(p.Topic, p.Debezium)
	}
	return nil
}
func (c *inputCollector) Windowed(n *Windowed) error { c.input(n.Input, n.Debezium); return nil }
func (c *inputCollector) Postgres(n *PostgresTable) error {
	if n.Model == nil { // a read model's table reads no change topic
		c.input(n.Input, n.Debezium)
	}
	return nil
}
func (c *inputCollector) ReadModelIndex(*ReadModelIndex) error { return nil }
func (c *inputCollector) Projection(*Projection) error         { return nil }
