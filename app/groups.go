package app

import (
	"slices"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
)

// deployment is what a topology's processor keeps in Kafka when it runs
// under a consumer group prefix: its consumer groups, the topics it reads
// and writes, and its dead-letter topic. Status, verify and reset read it;
// the processors build the same groups (processors.Processor.Groups).
type deployment struct {
	topo   *topologies.Topology
	group  string // the topology's own group: --group's prefix and the topology's name
	groups []consumerGroup
	// changeTopics are the change topics the topology reads, eventTopics
	// the event topics it writes or reads.
	changeTopics, eventTopics []string
	deadLetter                string
}

// consumerGroup is a consumer group a topology's processor runs as.
type consumerGroup struct {
	name string
	// inputs are the topics the group reads, its loop topic included.
	inputs []string
	// internal are the topics only the topology's processor writes: the
	// group's table and loop topics, a read model's updates topic.
	internal []string
}

// deploymentOf returns what t keeps in Kafka under the group prefix
// prefix ("" for none).
func deploymentOf(prefix string, t *topologies.Topology) deployment {
	c := &deploymentCollector{d: deployment{topo: t, group: groupOf(prefix, t), deadLetter: t.Name + ".dlq"}}
	c.own.name = c.d.group
	for _, n := range t.Engine() {
		n.Run(c)
	}
	if len(c.own.inputs) > 0 { // last, as the processor declares it
		c.d.groups = append(c.d.groups, c.own)
	}
	if c.relay { // the event relay, after the groups
		c.d.groups = append(c.d.groups, consumerGroup{name: engine.RelayGroup(c.d.group), inputs: []string{engine.TableTopic(c.d.group)}})
	}
	for _, topics := range []*[]string{&c.d.changeTopics, &c.d.eventTopics} {
		slices.Sort(*topics)
		*topics = slices.Compact(*topics)
	}
	return c.d
}

// deploymentCollector collects a topology's deployment node by node.
type deploymentCollector struct {
	d     deployment
	own   consumerGroup // the topology's own group
	relay bool          // whether an event relay reads its table
}

func (c *deploymentCollector) reads(topic string) {
	c.own.inputs = append(c.own.inputs, topic)
	c.d.changeTopics = append(c.d.changeTopics, topic)
}

func (c *deploymentCollector) Metrics(n *engine.Metrics) error         { c.reads(n.Input); return nil }
func (c *deploymentCollector) Windowed(n *engine.Windowed) error       { c.reads(n.Input); return nil }
func (c *deploymentCollector) SearchIndex(n *engine.SearchIndex) error { c.reads(n.Input); return nil }

func (c *deploymentCollector) Events(n *engine.Events) error {
	c.reads(n.Input)
	c.relay = true
	c.d.eventTopics = append(c.d.eventTopics, n.Output)
	if table := engine.TableTopic(c.d.group); !slices.Contains(c.own.internal, table) {
		c.own.internal = append(c.own.internal, table) // the rows' last versions
	}
	return nil
}

func (c *deploymentCollector) ReadModel(n *engine.ReadModel) error {
	inputs := n.Inputs()
	c.d.changeTopics = append(c.d.changeTopics, inputs...)
	model := engine.ReadModelGroup(c.d.group, n.Name)
	if len(inputs) == 1 {
		c.d.groups = append(c.d.groups, stateGroup(model, inputs[0]))
		c.gate(n)
		return nil
	}
	join, updates := engine.JoinGroup(c.d.group, n.Name), engine.UpdatesTopic(c.d.group, n.Name)
	var joined []string
	for i, topic := range inputs {
		// The join stage reads the root table only for what it references.
		if i > 0 || n.HasReferences() {
			joined = append(joined, topic)
		}
	}
	j := stateGroup(join, joined...)
	j.internal = append(j.internal, updates)
	c.d.groups = append(c.d.groups, j, stateGroup(model, inputs[0], updates))
	c.gate(n)
	return nil
}

func (c *deploymentCollector) Postgres(n *engine.PostgresTable) error {
	if n.Model == nil {
		c.reads(n.Input)
		return nil
	}
	if topic := engine.TableTopic(engine.ReadModelGroup(c.d.group, n.Model.Name)); !slices.Contains(c.own.inputs, topic) {
		c.own.inputs = append(c.own.inputs, topic)
	}
	return nil
}

func (c *deploymentCollector) ReadModelIndex(n *engine.ReadModelIndex) error {
	if topic := engine.TableTopic(engine.ReadModelGroup(c.d.group, n.Model.Name)); !slices.Contains(c.own.inputs, topic) {
		c.own.inputs = append(c.own.inputs, topic)
	}
	return nil
}

func (c *deploymentCollector) Projection(n *engine.Projection) error {
	c.d.eventTopics = append(c.d.eventTopics, n.Topic)
	c.d.groups = append(c.d.groups, stateGroup(engine.ProjectionGroup(c.d.group, n.Name), n.Topic))
	return nil
}

// stateGroup is a group that reads inputs and loops messages back to
// itself, and keeps a table.
// gate adds the groups of a transaction-consistent read model's gate: the
// ends group reading the transaction topic, and the gate, whose input and
// consistent topics only the processor writes.
func (c *deploymentCollector) gate(n *engine.ReadModel) {
	prefix, err := n.TopicPrefix()
	if !n.Consistent || err != nil {
		return // a processor refuses such a read model
	}
	in := engine.GateTopic(c.d.group, n.Name)
	gate := stateGroup(engine.GateGroup(c.d.group, n.Name), in)
	gate.internal = append(gate.internal, in, engine.ConsistentTopic(c.d.group, n.Name))
	c.d.groups = append(c.d.groups,
		consumerGroup{name: engine.EndsGroup(c.d.group, n.Name), inputs: []string{serde.TransactionTopic(prefix)}}, gate)
}

func stateGroup(name string, inputs ...string) consumerGroup {
	loop := engine.LoopTopic(name)
	return consumerGroup{name: name, inputs: append(inputs, loop), internal: []string{engine.TableTopic(name), loop}}
}

// groupNames returns the names of d's groups, in the processor's order.
func (d deployment) groupNames() []string {
	names := make([]string, len(d.groups))
	for i, g := range d.groups {
		names[i] = g.name
	}
	return names
}
